package audit

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/store"
)

// InclusionProof shows that a record is in the tree a signed checkpoint commits to. It is
// checked with VerifyInclusion and the public key alone.
type InclusionProof struct {
	Seq int64 `json:"seq"`
	// Record is the record's canonical encoding, exactly as hashed.
	Record string `json:"record"`
	// Checkpoint is the signed checkpoint the proof leads to.
	Checkpoint string `json:"checkpoint"`
	// Proof is the RFC 6962 audit path, leaf to root.
	Proof tlog.RecordProof `json:"proof"`
}

// ConsistencyProof shows that the tree of the Old checkpoint is a prefix of the New one's.
type ConsistencyProof struct {
	Old   string         `json:"old"`
	New   string         `json:"new"`
	Proof tlog.TreeProof `json:"proof"`
}

// checkpointCovering returns the smallest stored checkpoint of at least size records.
func checkpointCovering(ctx context.Context, st store.Store, size int64, exact bool) (store.Checkpoint, error) {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return store.Checkpoint{}, err
	}
	for _, c := range cps {
		if c.Size == size || (!exact && c.Size > size) {
			return c, nil
		}
	}
	if exact {
		return store.Checkpoint{}, fmt.Errorf("no checkpoint at size %d", size)
	}
	return store.Checkpoint{}, fmt.Errorf("no checkpoint covers record %d yet (checkpoints are signed every few records or seconds)", size-1)
}

// ProveInclusion returns the proof that record seq is in the log, against the first stored
// checkpoint that covers it. The checkpoint is verified with verifier before it is used.
func ProveInclusion(ctx context.Context, st store.Store, seq int64, verifier note.Verifier) (*InclusionProof, error) {
	r, err := st.Get(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("prove record %d: %w", seq, err)
	}
	c, err := checkpointCovering(ctx, st, seq+1, false)
	if err != nil {
		return nil, fmt.Errorf("prove record %d: %w", seq, err)
	}
	t, err := ParseCheckpoint(c.Note, verifier)
	if err != nil {
		return nil, fmt.Errorf("prove record %d: %w", seq, err)
	}
	p, err := tlog.ProveRecord(t.Size, seq, storeHashReader(ctx, st))
	if err != nil {
		return nil, fmt.Errorf("prove record %d: %w", seq, err)
	}
	ip := &InclusionProof{Seq: seq, Record: string(r.Data), Checkpoint: string(c.Note), Proof: p}
	if err := VerifyInclusion(ip, verifier, t.Origin); err != nil {
		return nil, fmt.Errorf("prove record %d: the stored hashes do not lead to the checkpoint (run audit verify): %w", seq, err)
	}
	return ip, nil
}

// VerifyInclusion checks an inclusion proof with the public key alone: the checkpoint's
// signature and origin, then the audit path from the record's leaf hash to the signed root.
func VerifyInclusion(p *InclusionProof, verifier note.Verifier, origin string) error {
	t, err := ParseCheckpoint([]byte(p.Checkpoint), verifier)
	if err != nil {
		return err
	}
	if origin != "" && t.Origin != origin {
		return fmt.Errorf("the checkpoint is for log %q, not %q", t.Origin, origin)
	}
	if p.Seq < 0 || p.Seq >= t.Size {
		return fmt.Errorf("record %d is outside the checkpoint's %d records", p.Seq, t.Size)
	}
	if err := tlog.CheckRecord(p.Proof, t.Size, t.Hash, p.Seq, tlog.RecordHash([]byte(p.Record))); err != nil {
		return fmt.Errorf("record %d is not in the signed tree of size %d: %w", p.Seq, t.Size, err)
	}
	return nil
}

// ProveConsistency returns the proof that the stored checkpoint of size oldSize is a prefix of
// the one of size newSize.
func ProveConsistency(ctx context.Context, st store.Store, oldSize, newSize int64, verifier note.Verifier) (*ConsistencyProof, error) {
	if oldSize > newSize {
		return nil, fmt.Errorf("prove consistency: old size %d is larger than new size %d", oldSize, newSize)
	}
	oc, err := checkpointCovering(ctx, st, oldSize, true)
	if err != nil {
		return nil, fmt.Errorf("prove consistency: %w", err)
	}
	nc, err := checkpointCovering(ctx, st, newSize, true)
	if err != nil {
		return nil, fmt.Errorf("prove consistency: %w", err)
	}
	p, err := tlog.ProveTree(newSize, oldSize, storeHashReader(ctx, st))
	if err != nil {
		return nil, fmt.Errorf("prove consistency: %w", err)
	}
	cp := &ConsistencyProof{Old: string(oc.Note), New: string(nc.Note), Proof: p}
	if err := VerifyConsistency(cp, verifier, ""); err != nil {
		return nil, fmt.Errorf("prove consistency: the stored hashes do not lead to the checkpoints (run audit verify): %w", err)
	}
	return cp, nil
}

// VerifyConsistency checks a consistency proof with the public key alone.
func VerifyConsistency(p *ConsistencyProof, verifier note.Verifier, origin string) error {
	o, err := ParseCheckpoint([]byte(p.Old), verifier)
	if err != nil {
		return fmt.Errorf("old %w", err)
	}
	n, err := ParseCheckpoint([]byte(p.New), verifier)
	if err != nil {
		return fmt.Errorf("new %w", err)
	}
	if o.Origin != n.Origin || (origin != "" && n.Origin != origin) {
		return fmt.Errorf("the checkpoints name logs %q and %q", o.Origin, n.Origin)
	}
	if o.Size > n.Size {
		return fmt.Errorf("the old checkpoint (%d records) is larger than the new one (%d)", o.Size, n.Size)
	}
	if err := tlog.CheckTree(p.Proof, n.Size, n.Hash, o.Size, o.Hash); err != nil {
		return fmt.Errorf("the tree of %d records is not a prefix of the tree of %d: %w", o.Size, n.Size, err)
	}
	return nil
}
