package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Defaults for FileOptions.
const (
	DefaultFileMaxSize = 100 << 20
	DefaultFileMaxAge  = 24 * time.Hour
	DefaultFileKeep    = 7
)

// rotatedFormat names rotated files; it sorts as text in time order.
const rotatedFormat = "20060102T150405.000000000Z"

// FileOptions configures a JSON Lines file sink.
type FileOptions struct {
	Options
	// MaxSize rotates the file before a write would make it larger (default DefaultFileMaxSize).
	MaxSize int64
	// MaxAge rotates the file once the sink has had it open this long (default
	// DefaultFileMaxAge); an empty file is never rotated.
	MaxAge time.Duration
	// Keep is how many rotated files are kept; older ones are removed (default DefaultFileKeep).
	Keep int
}

// NewFile returns a sink that appends every record's canonical JSON, one per line, to path
// (created 0600). The file is rotated by renaming it to NAME-TIMESTAMP.EXT beside it.
func NewFile(name, path string, opts *FileOptions) (*Sink, error) {
	o := FileOptions{}
	if opts != nil {
		o = *opts
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultFileMaxSize
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultFileMaxAge
	}
	if o.Keep <= 0 {
		o.Keep = DefaultFileKeep
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	f := &fileDest{path: path, maxSize: o.MaxSize, maxAge: o.MaxAge, keep: o.Keep, now: now}
	if err := f.open(); err != nil {
		return nil, err
	}
	return newSink(name, f, &o.Options), nil
}

type fileDest struct {
	path    string
	maxSize int64
	maxAge  time.Duration
	keep    int
	now     func() time.Time

	// Owned by the sink's goroutine.
	f        *os.File
	size     int64
	openedAt time.Time
	buf      []byte
}

func (d *fileDest) open() error {
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open export file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open export file: %w", err)
	}
	d.f, d.size, d.openedAt = f, st.Size(), d.now()
	return nil
}

func (d *fileDest) write(_ context.Context, batch []audit.Durable) error {
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	d.buf = d.buf[:0]
	for _, r := range batch {
		d.buf = append(d.buf, r.Data...)
		d.buf = append(d.buf, '\n')
	}
	if d.size > 0 && (d.size+int64(len(d.buf)) > d.maxSize || d.now().Sub(d.openedAt) >= d.maxAge) {
		if err := d.rotate(); err != nil {
			return err
		}
	}
	if n, err := d.f.Write(d.buf); err != nil {
		// Leave no partial line behind: the retry writes the whole batch again.
		if n > 0 {
			_ = d.f.Truncate(d.size)
		}
		return fmt.Errorf("write export file: %w", err)
	}
	d.size += int64(len(d.buf))
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync export file: %w", err)
	}
	return nil
}

// rotate renames the current file to a timestamped name, opens a new one and removes the
// oldest rotated files beyond keep.
func (d *fileDest) rotate() error {
	dir, base := filepath.Split(d.path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	at := d.now().UTC()
	to := filepath.Join(dir, stem+"-"+at.Format(rotatedFormat)+ext)
	for {
		// Never overwrite an earlier rotation (a coarse clock can repeat a time).
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		at = at.Add(time.Nanosecond)
		to = filepath.Join(dir, stem+"-"+at.Format(rotatedFormat)+ext)
	}
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("rotate export file: %w", err)
	}
	d.f = nil
	if err := os.Rename(d.path, to); err != nil {
		return fmt.Errorf("rotate export file: %w", err)
	}
	if err := d.open(); err != nil {
		return err
	}
	old, err := rotated(dir, stem, ext)
	if err != nil {
		return nil // the new file is open; pruning waits for the next rotation
	}
	for len(old) > d.keep {
		if err := os.Remove(old[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		old = old[1:]
	}
	return nil
}

// rotated lists the rotated files of stem+ext in dir, oldest first.
func rotated(dir, stem, ext string) ([]string, error) {
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		ts, ok := strings.CutPrefix(n, stem+"-")
		if !ok || !strings.HasSuffix(ts, ext) {
			continue
		}
		if _, err := time.Parse(rotatedFormat, strings.TrimSuffix(ts, ext)); err != nil {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	slices.Sort(out)
	return out, nil
}

func (d *fileDest) close() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
