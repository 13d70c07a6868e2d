package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/store"
)

// Tree is the content of a checkpoint: the log's origin, size and root hash.
type Tree struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// formatCheckpoint returns the checkpoint text (C2SP tlog-checkpoint: origin, size, base64 root
// hash, one per line).
func formatCheckpoint(t Tree) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", t.Origin, t.Size, base64.StdEncoding.EncodeToString(t.Hash[:]))
}

// ParseCheckpoint verifies a signed checkpoint with verifier and returns its tree.
func ParseCheckpoint(msg []byte, verifier note.Verifier) (Tree, error) {
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return Tree{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return Tree{}, fmt.Errorf("checkpoint: want origin, size and hash lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Tree{}, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	hb, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(hb) != tlog.HashSize {
		return Tree{}, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	t := Tree{Origin: lines[0], Size: size}
	copy(t.Hash[:], hb)
	return t, nil
}

// GenerateKey returns a new Ed25519 signing key and its verifier key in the note format. The
// verifier key ("name+keyid+key") is all a third party needs to check checkpoints and proofs.
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// maybeCheckpoint signs a checkpoint when CheckpointEvery records or CheckpointInterval have
// passed since the last one (or, with force, whenever there is something new). It names only
// durable records (the synced size): a checkpoint beyond them would, after a power loss, look
// like truncation to the verifier. It runs on the settler, which owns synced, lastCP and
// lastCPAt; the writer may meanwhile be committing further records.
//
// A checkpoint that cannot be written to the checkpoint directory breaks the log like a failed
// Sync: records no external checkpoint will ever cover are not acknowledged, so every later
// append fails (the gateway answers 503) until mcpguard restarts. The error is returned for
// Close to report.
func (l *Log) maybeCheckpoint(force bool) error {
	size := l.synced
	if l.opts.Signer == nil || size == l.lastCP || l.failure() != nil {
		return nil
	}
	now := l.now()
	if !force && size-l.lastCP < l.opts.CheckpointEvery && now.Sub(l.lastCPAt) < l.opts.CheckpointInterval {
		return nil
	}
	ctx, cancel := l.storeContext()
	defer cancel()
	// The tree hash at size reads the few subtree hashes it needs from the store: the writer's
	// in-memory frontier is ahead of size and belongs to another goroutine.
	msg, err := signCheckpoint(ctx, l.st, l.opts.Signer, l.opts.Origin, size)
	if err != nil {
		l.logger.Error("audit checkpoint not signed", "size", size, "err", err)
		return err
	}
	// The external copy first: a checkpoint that exists only inside the database protects
	// nothing against someone who can rewrite the database.
	if l.opts.CheckpointDir != "" {
		if err := WriteCheckpointFile(l.opts.CheckpointDir, size, msg); err != nil {
			err = fmt.Errorf("%w: the checkpoint of %d records could not be written to the checkpoint directory; the log refuses every append until mcpguard restarts: %w", ErrUnavailable, size, err)
			l.broken.CompareAndSwap(nil, &err)
			l.logger.Error("audit checkpoint not written to the checkpoint directory; the audit log is unavailable until restart", "size", size, "err", err)
			return err
		}
	}
	l.witness(size, msg)
	if err := l.st.AddCheckpoint(ctx, store.Checkpoint{Size: size, Time: now.UTC(), Note: msg}); err != nil {
		// The external copy, which is what protects the log, exists; the next checkpoint
		// will be stored.
		l.logger.Error("audit checkpoint not stored", "size", size, "err", err)
		return nil
	}
	l.lastCP, l.lastCPAt = size, now
	l.stats.checkpointed(now, l.synced-size)
	l.logger.Debug("audit checkpoint signed", "size", size)
	return nil
}

// witness offers a checkpoint to every witness; each proves consistency from the store when it
// sends it.
func (l *Log) witness(size int64, msg []byte) {
	if len(l.opts.Witnesses) == 0 {
		return
	}
	st := l.st
	prove := func(ctx context.Context, oldSize int64) (tlog.TreeProof, error) {
		return tlog.ProveTree(size, oldSize, storeHashReader(ctx, st))
	}
	for _, w := range l.opts.Witnesses {
		w.OfferCheckpoint(SignedCheckpoint{Size: size, Note: msg, Prove: prove})
	}
}

// signCheckpoint signs the checkpoint of the first size records the store holds, computing the
// tree hash from the stored hashes.
func signCheckpoint(ctx context.Context, st store.Store, signer note.Signer, origin string, size int64) ([]byte, error) {
	h, err := tlog.TreeHash(size, storeHashReader(ctx, st))
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(formatCheckpoint(Tree{Origin: origin, Size: size, Hash: h}))}, signer)
}

// checkpointName is the file name of the checkpoint at size n; names sort by size.
func checkpointName(n int64) string { return fmt.Sprintf("checkpoint-%020d", n) }

// WriteCheckpointFile writes a signed checkpoint into dir durably (temporary file, fsync,
// rename, fsync of the directory). An existing file for the same size is left alone.
func WriteCheckpointFile(dir string, size int64, msg []byte) error {
	return writeDirFile(dir, checkpointName(size), msg)
}

// writeDirFile writes msg durably as dir/name, leaving an existing file alone.
func writeDirFile(dir, name string, msg []byte) error {
	final := filepath.Join(dir, name)
	if old, err := os.ReadFile(final); err == nil {
		if bytes.Equal(old, msg) {
			return nil
		}
		return fmt.Errorf("%s exists with a different checkpoint", final)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return WriteFileDurably(dir, name, msg)
}

// WriteFileDurably writes data as dir/name: a temporary file, fsync, rename over the old one,
// fsync of the directory. A crash leaves the old content or the new, never a mix. The
// checkpoint directory and the witness's state use it.
func WriteFileDurably(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ExternalCheckpoint is a checkpoint file from the checkpoint directory.
type ExternalCheckpoint struct {
	Path string
	Note []byte
}

// ReadCheckpointDir returns the checkpoint files in dir, in name (size) order.
func ReadCheckpointDir(dir string) ([]ExternalCheckpoint, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint directory: %w", err)
	}
	var out []ExternalCheckpoint
	for _, e := range ents {
		if e.IsDir() || !strings.HasPrefix(e.Name(), "checkpoint-") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
		out = append(out, ExternalCheckpoint{Path: p, Note: b})
	}
	return out, nil
}

// ReadSigningKey reads the text of a signing key written by GenerateKey (mcpguard audit keygen)
// from a file that group and others cannot read.
func ReadSigningKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("audit signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("audit signing key %s: mode %v lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("audit signing key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// LoadSigner reads a signing key written by GenerateKey (mcpguard audit keygen) from a file.
// The file must not be readable by group or others.
func LoadSigner(path string) (note.Signer, error) {
	skey, err := ReadSigningKey(path)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: not a signing key (want the .key file from mcpguard audit keygen)", path)
	}
	return s, nil
}
