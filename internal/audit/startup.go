package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/store"
)

// Open compares the store with the newest checkpoint in the checkpoint directory before it
// appends anything; these errors say why it refused.
var (
	// ErrLogMismatch: the store is not the log the checkpoint directory vouches for. It was
	// rolled back to an older copy, truncated, deleted, replaced or edited.
	ErrLogMismatch = errors.New("the audit store does not match the checkpoint directory")
	// ErrUncovered: the store holds records after the newest external checkpoint. The log
	// would sign them as its own at its next checkpoint, so it refuses until an operator has
	// reviewed and accepted them (AcceptRecords, mcpguard audit accept).
	ErrUncovered = errors.New("the audit store holds records no external checkpoint covers")
)

// externalHead is the newest checkpoint of the checkpoint directory.
type externalHead struct {
	Tree
	path string
}

// newestExternal reads the newest checkpoint of dir (the file with the largest size in its
// name) and checks its signature with v and its origin. ok is false when dir holds no
// checkpoint or does not exist yet (it is created with the first checkpoint).
func newestExternal(dir string, v note.Verifier, origin string) (head externalHead, ok bool, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return head, false, nil
	}
	if err != nil {
		return head, false, fmt.Errorf("read checkpoint directory: %w", err)
	}
	// ReadDir sorts by name, and the sizes in the names are zero-padded: the last is the newest.
	for i := len(ents) - 1; i >= 0; i-- {
		name := ents[i].Name()
		digits, found := strings.CutPrefix(name, "checkpoint-")
		if !found || ents[i].IsDir() {
			continue
		}
		size, perr := strconv.ParseInt(digits, 10, 64)
		if perr != nil || len(digits) != 20 {
			continue // not a name the log writes; audit verify reports what it holds
		}
		head.path = filepath.Join(dir, name)
		b, err := os.ReadFile(head.path)
		if err != nil {
			return head, false, fmt.Errorf("read checkpoint: %w", err)
		}
		head.Tree, err = ParseCheckpoint(b, v)
		switch {
		case err != nil:
			return head, false, fmt.Errorf("%w: %s: %v: it was not signed with this log's key; run mcpguard audit verify with the log's public key", ErrLogMismatch, head.path, err)
		case head.Origin != origin:
			return head, false, fmt.Errorf("%w: %s is a checkpoint of log %q, not %q: is checkpoint_dir the directory of this log?", ErrLogMismatch, head.path, head.Origin, origin)
		case head.Size != size:
			return head, false, fmt.Errorf("%w: %s signs %d records, not the %d its name says", ErrLogMismatch, head.path, head.Size, size)
		}
		return head, true, nil
	}
	return head, false, nil
}

// coverage compares the store, which holds size records, with the newest checkpoint of dir and
// returns how many of its records that checkpoint covers. It fails with ErrLogMismatch when the
// store has fewer records than the checkpoint (rolled back, truncated or deleted), when its
// first records do not hash to the checkpoint's root, or when its tree is not an extension of
// the checkpoint's (replaced or edited).
func coverage(ctx context.Context, st store.Store, size int64, dir string, v note.Verifier, origin string) (int64, error) {
	head, ok, err := newestExternal(dir, v, origin)
	if err != nil || !ok {
		return 0, err
	}
	verifyHint := fmt.Sprintf("run `mcpguard audit verify --checkpoints %s` to see what changed, and restore the newest copy of the database", dir)
	switch {
	case size == 0:
		return 0, fmt.Errorf("%w: the audit store is empty but %s signs %d records: the database was deleted or replaced by a new one. Restore it from a backup (and run `mcpguard audit verify`); to start a new log on purpose, point checkpoint_dir at a new, empty directory and keep the old one as evidence", ErrLogMismatch, head.path, head.Size)
	case size < head.Size:
		return 0, fmt.Errorf("%w: the audit store holds %d records but %s signs %d: the database was rolled back to an older copy or its tail was deleted; %s. mcpguard will not append to it", ErrLogMismatch, size, head.path, head.Size, verifyHint)
	}
	r := storeHashReader(ctx, st)
	h, err := tlog.TreeHash(head.Size, r)
	if err != nil {
		return 0, fmt.Errorf("compare the audit store with %s: %w", head.path, err)
	}
	if h != head.Hash {
		return 0, fmt.Errorf("%w: the first %d records of the audit store do not hash to the root %s signs: the database was replaced or edited (a fork of the log); %s", ErrLogMismatch, head.Size, head.path, verifyHint)
	}
	if size > head.Size {
		// The root at head.Size is computed from the store's own hashes; the consistency proof
		// checks that the store's current tree really extends it (stored hashes that were
		// edited above head.Size would not).
		th, err := tlog.TreeHash(size, r)
		if err != nil {
			return 0, fmt.Errorf("compare the audit store with %s: %w", head.path, err)
		}
		proof, err := tlog.ProveTree(size, head.Size, r)
		if err != nil {
			return 0, fmt.Errorf("compare the audit store with %s: %w", head.path, err)
		}
		if err := tlog.CheckTree(proof, size, th, head.Size, head.Hash); err != nil {
			return 0, fmt.Errorf("%w: the audit store's tree of %d records is not an extension of the one %s signs (%v): the database was replaced or edited; %s", ErrLogMismatch, size, head.path, err, verifyHint)
		}
	}
	return head.Size, nil
}

// checkStore is Open's check of the store against the checkpoint directory (size records are
// durable in it). Without a signer or a directory there is nothing to compare with.
func (l *Log) checkStore(ctx context.Context, size int64) error {
	if l.opts.Signer == nil || l.opts.CheckpointDir == "" {
		return nil
	}
	covered, err := coverage(ctx, l.st, size, l.opts.CheckpointDir, SignerVerifier(l.opts.Signer), l.opts.Origin)
	if err != nil {
		return err
	}
	if size > covered {
		return fmt.Errorf("%w: records %d..%d of the audit store are after the newest checkpoint in %s (%d records). "+
			"A clean shutdown signs every record, so either mcpguard stopped without its final checkpoint (a crash, a kill, a full checkpoint directory) or records were added while it was stopped. "+
			"mcpguard will not sign records it did not write: run `mcpguard audit verify --checkpoints %s`, review those records, "+
			"then accept them with `mcpguard audit accept --records %d --signing-key KEY --checkpoints %s` (or restore the database)",
			ErrUncovered, covered, size-1, l.opts.CheckpointDir, covered, l.opts.CheckpointDir, size-covered, l.opts.CheckpointDir)
	}
	l.stats.checked = true
	return nil
}

// AcceptOptions configures AcceptRecords.
type AcceptOptions struct {
	// CheckpointDir is the log's checkpoint directory (required).
	CheckpointDir string
	// Origin is the log's name (default DefaultOrigin).
	Origin string
	// Records is how many records after the newest external checkpoint the operator reviewed
	// and accepts; it must be exactly how many there are, so that records added after the
	// review are not accepted with them.
	Records int64
	Now     func() time.Time
}

// AcceptRecords signs, with the log's key, a checkpoint over the records that follow the newest
// checkpoint of the checkpoint directory, once an operator has reviewed them: after a crash,
// the records written since the last checkpoint, which Open otherwise refuses (ErrUncovered).
// It writes the checkpoint to the directory and the store, and beside it a file
// accepted-<size> holding the same checkpoint, which says that these records were accepted by
// an operator, not signed by the running gateway. The store must not be in use by a gateway.
// It fails with ErrLogMismatch as Open does.
func AcceptRecords(ctx context.Context, st store.Store, signer note.Signer, opts AcceptOptions) (Tree, error) {
	if opts.CheckpointDir == "" {
		return Tree{}, errors.New("accept audit records: the checkpoint directory is required")
	}
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if p, ok := st.(store.Pipeliner); ok {
		if err := p.Sync(ctx); err != nil {
			return Tree{}, fmt.Errorf("accept audit records: %w", err)
		}
	}
	size, err := st.Size(ctx)
	if err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	covered, err := coverage(ctx, st, size, opts.CheckpointDir, SignerVerifier(signer), opts.Origin)
	if err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	if n := size - covered; n == 0 || n != opts.Records {
		return Tree{}, fmt.Errorf("accept audit records: the store holds %d records after the newest external checkpoint (%d records), not %d; nothing was signed", n, covered, opts.Records)
	}
	msg, err := signCheckpoint(ctx, st, signer, opts.Origin, size)
	if err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	if err := writeDirFile(opts.CheckpointDir, acceptedName(size), msg); err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	if err := WriteCheckpointFile(opts.CheckpointDir, size, msg); err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	if err := st.AddCheckpoint(ctx, store.Checkpoint{Size: size, Time: opts.Now().UTC(), Note: msg}); err != nil {
		return Tree{}, fmt.Errorf("accept audit records: store the checkpoint: %w", err)
	}
	t, err := ParseCheckpoint(msg, SignerVerifier(signer))
	if err != nil {
		return Tree{}, fmt.Errorf("accept audit records: %w", err)
	}
	return t, nil
}

// acceptedName is the file recording that an operator accepted the records up to n.
func acceptedName(n int64) string { return fmt.Sprintf("accepted-%020d", n) }

// SignerVerifier returns a verifier for the signatures of s. Ed25519 signatures (the only kind
// note.NewSigner makes) are deterministic, so a signature is checked by signing again: the
// log checks its own checkpoints without being given its public key.
func SignerVerifier(s note.Signer) note.Verifier { return signerVerifier{s} }

type signerVerifier struct{ s note.Signer }

func (v signerVerifier) Name() string    { return v.s.Name() }
func (v signerVerifier) KeyHash() uint32 { return v.s.KeyHash() }
func (v signerVerifier) Verify(msg, sig []byte) bool {
	want, err := v.s.Sign(msg)
	return err == nil && bytes.Equal(want, sig)
}
