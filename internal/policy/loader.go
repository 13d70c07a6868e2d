package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// LoaderOptions tune a Loader. A nil *LoaderOptions means the defaults.
type LoaderOptions struct {
	// Compile options for every load.
	Compile *Options
	// Logger receives reloads and rejected policies; nil discards.
	Logger *slog.Logger
	// OnReload, when set, is called after every reload attempt that read
	// new content: a file whose bytes are those of the last attempt (an
	// editor saving without a change, a SIGHUP, a touch) is not reloaded
	// and not reported.
	OnReload func(Reload)
	// Debounce is how long Watch waits for a burst of file events to end
	// before reloading; 0 means 100ms.
	Debounce time.Duration
	// PollEvery is how often Watch also reads the file whatever the events
	// say (0 means DefaultPollEvery): a file on shared storage (NFS, a
	// cloud file system) changed by another machine raises no event here,
	// and a deployment's instances sharing it must all see the change. The
	// read costs a hash of the file; unchanged bytes are not compiled.
	PollEvery time.Duration
}

// DefaultPollEvery is how often Watch reads the policy file without an event.
const DefaultPollEvery = time.Second

// Reload is one reload attempt, as OnReload reports it.
type Reload struct {
	// Previous is the policy in force before the attempt; Current the one
	// in force after it (Previous again when Err rejected the file).
	Previous, Current *Policy
	// SHA256 is the hex SHA-256 of the bytes read; empty when the file
	// could not be read.
	SHA256 string
	// Change is what changed from Previous to Current.
	Change Change
	// Err rejected the file: it could not be read or has problems.
	Err error
}

// Loader holds the policy in force and replaces it, atomically, only with
// a policy that compiled without a problem. Readers call Policy on every
// decision; it never blocks.
type Loader struct {
	path    string
	opts    LoaderOptions
	logger  *slog.Logger
	current atomic.Pointer[Policy]
	mu      sync.Mutex // serializes reloads
	lastErr error
	// seen identifies the content of the last attempt: its SHA-256, or the
	// read error; an attempt that finds the same is not repeated.
	seen string
}

// NewLoader reads and compiles the policy at path; the first load must
// succeed.
func NewLoader(path string, opts *LoaderOptions) (*Loader, error) {
	l := &Loader{path: path}
	if opts != nil {
		l.opts = *opts
	}
	l.logger = l.opts.Logger
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.opts.Debounce <= 0 {
		l.opts.Debounce = 100 * time.Millisecond
	}
	if l.opts.PollEvery <= 0 {
		l.opts.PollEvery = DefaultPollEvery
	}
	p, err := ParseFile(path, l.opts.Compile)
	if err != nil {
		return nil, err
	}
	l.current.Store(p)
	l.seen = p.SHA256()
	return l, nil
}

// Policy returns the policy in force.
func (l *Loader) Policy() *Policy { return l.current.Load() }

// Err returns the error of the last reload, or nil if it succeeded.
func (l *Loader) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// Reload reads the file again. A policy with any problem is rejected — the
// error lists every problem — and the policy in force stays. Content read
// before (the same bytes as the last attempt, or the same read error) is
// not compiled again: Reload then returns the last attempt's error and
// reports nothing.
func (l *Loader) Reload() error {
	l.mu.Lock()
	data, err := readPolicyFile(l.path)
	seen := ""
	if err != nil {
		seen = "error: " + err.Error()
	} else {
		seen = hashHex(data)
	}
	if seen == l.seen {
		err := l.lastErr
		l.mu.Unlock()
		l.logger.Debug("policy file unchanged; not reloaded", "file", l.path)
		return err
	}
	l.seen = seen
	prev := l.current.Load()
	ev := Reload{Previous: prev, Current: prev}
	var p *Policy
	if err == nil {
		ev.SHA256 = seen
		p, err = Parse(data, l.path, l.opts.Compile)
	}
	if err == nil {
		l.current.Store(p)
		ev.Current, ev.Change = p, Diff(prev, p)
		l.logger.Info("policy reloaded", "file", l.path, "sha256", seen, "change", ev.Change.String(),
			"roles", p.NumRoles(), "permissions", p.NumPermissions())
	} else {
		l.logger.Error("policy rejected; the previous policy stays in force", "file", l.path, "error", err)
	}
	l.lastErr, ev.Err = err, err
	l.mu.Unlock()
	if l.opts.OnReload != nil {
		l.opts.OnReload(ev)
	}
	return err
}

// Watch reloads the policy whenever its file changes, until ctx ends. It
// watches the file's directory, so that editors that replace the file
// (write a temporary, rename it over) and mounted configuration that swaps
// a symbolic link are both seen, and reads the file every PollEvery besides,
// so that a change no event announces (shared storage written by another
// machine) is seen too.
func (l *Loader) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(l.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	target := filepath.Clean(l.path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	poll := time.NewTicker(l.opts.PollEvery)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch policy: the watcher closed")
			}
			// A symbolic link swap (Kubernetes ConfigMaps) changes another
			// name in the directory; reloading on any event there is cheap.
			if filepath.Clean(ev.Name) == target || ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
				timer.Reset(l.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch policy: the watcher closed")
			}
			l.logger.Warn("policy watcher", "error", err)
		case <-timer.C:
			_ = l.Reload()
		case <-poll.C:
			_ = l.Reload()
		}
	}
}
