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
	// OnReload, when set, is called after every reload attempt with the
	// policy now in force and the error that rejected the new file (nil
	// when it was accepted).
	OnReload func(current *Policy, err error)
	// Debounce is how long Watch waits for a burst of file events to end
	// before reloading; 0 means 100ms.
	Debounce time.Duration
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
	p, err := ParseFile(path, l.opts.Compile)
	if err != nil {
		return nil, err
	}
	l.current.Store(p)
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
// error lists every problem — and the policy in force stays.
func (l *Loader) Reload() error {
	l.mu.Lock()
	p, err := ParseFile(l.path, l.opts.Compile)
	if err == nil {
		l.current.Store(p)
		l.logger.Info("policy reloaded", "file", l.path, "roles", p.NumRoles(), "permissions", p.NumPermissions())
	} else {
		l.logger.Error("policy rejected; the previous policy stays in force", "file", l.path, "error", err)
	}
	l.lastErr = err
	cur := l.current.Load()
	l.mu.Unlock()
	if l.opts.OnReload != nil {
		l.opts.OnReload(cur, err)
	}
	return err
}

// Watch reloads the policy whenever its file changes, until ctx ends. It
// watches the file's directory, so that editors that replace the file
// (write a temporary, rename it over) and mounted configuration that swaps
// a symbolic link are both seen.
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
		}
	}
}
