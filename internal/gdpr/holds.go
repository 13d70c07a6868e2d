package gdpr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Hold kinds.
const (
	HoldPrincipal = "principal"
	HoldSubject   = "subject"
	HoldRange     = "range"
)

// HoldRequest places a legal hold on exactly one of: a principal's records, a data subject's
// records, or the records of a time range.
type HoldRequest struct {
	Principal string
	Subject   string    // the identifier; the hold keeps only its commitment
	From      time.Time // a range: From inclusive, Until exclusive (zero: open)
	Until     time.Time
	Reason    string
}

// holdDetail is the Detail of a KindLegalHold record. A subject hold names the subject only by
// the record's commitment.
type holdDetail struct {
	Action    string `json:"action"` // "place" or "release"
	Hold      string `json:"hold"`
	Kind      string `json:"kind,omitempty"`
	Principal string `json:"principal,omitempty"`
	From      string `json:"from,omitempty"`
	Until     string `json:"until,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Via       string `json:"via,omitempty"`
}

// AddHold places a hold and records it. The hold is stored first and removed again when its
// record cannot be written: no hold is in force unrecorded.
func (s *Service) AddHold(ctx context.Context, req HoldRequest, actor Actor) (store.Hold, error) {
	h := store.Hold{ID: "hold-" + newID(), Reason: req.Reason, Actor: actor.Principal, Created: s.now().UTC()}
	n := 0
	if req.Principal != "" {
		n++
		h.Kind, h.Value = HoldPrincipal, req.Principal
	}
	var commitment string
	if req.Subject != "" {
		n++
		if err := s.checkSubject(req.Subject); err != nil {
			return h, err
		}
		commitment = s.subjects.Commitment(req.Subject)
		h.Kind, h.Value = HoldSubject, commitment
	}
	if !req.From.IsZero() || !req.Until.IsZero() {
		n++
		h.Kind, h.From, h.Until = HoldRange, req.From.UTC(), req.Until.UTC()
		if !req.From.IsZero() && !req.Until.IsZero() && !req.From.Before(req.Until) {
			return h, invalidf("the hold's range is empty: from %s is not before to %s", req.From.Format(time.RFC3339), req.Until.Format(time.RFC3339))
		}
	}
	switch {
	case n == 0:
		return h, invalidf("a hold covers a principal, a subject or a time range: give one")
	case n > 1:
		return h, invalidf("a hold covers one of a principal, a subject or a time range, not several: place several holds")
	case req.Reason == "":
		return h, invalidf("a hold needs a reason (the matter it preserves records for)")
	case len(req.Reason) > MaxReasonBytes:
		return h, invalidf("the reason has %d bytes, at most %d", len(req.Reason), MaxReasonBytes)
	case len(req.Principal) > MaxReasonBytes:
		return h, invalidf("the principal has %d bytes, at most %d", len(req.Principal), MaxReasonBytes)
	}
	if err := s.comp.AddHold(ctx, h); err != nil {
		return h, err
	}
	d := holdDetail{Action: "place", Hold: h.ID, Kind: h.Kind, Reason: h.Reason, Via: actor.Via}
	if h.Kind == HoldPrincipal {
		d.Principal = h.Value
	}
	d.From, d.Until = formatOrEmpty(h.From), formatOrEmpty(h.Until)
	if _, err := s.record(ctx, audit.KindLegalHold, actor, commitment, d, time.Time{}); err != nil {
		if rerr := s.comp.ReleaseHold(ctx, h.ID, s.now(), actor.Principal); rerr != nil {
			return h, errors.Join(err, fmt.Errorf("and the unrecorded hold %s was not removed: %w", h.ID, rerr))
		}
		return h, err
	}
	return h, nil
}

// ReleaseHold records a hold's release, then releases it (a failure after the record leaves the
// hold in force: the safe side).
func (s *Service) ReleaseHold(ctx context.Context, id string, actor Actor) error {
	holds, err := s.comp.Holds(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(holds, func(h store.Hold) bool { return h.ID == id && h.Released.IsZero() })
	if i < 0 {
		return fmt.Errorf("release hold %s: no hold in force has this id: %w", id, store.ErrNotFound)
	}
	commitment := ""
	if holds[i].Kind == HoldSubject {
		commitment = holds[i].Value
	}
	if _, err := s.record(ctx, audit.KindLegalHold, actor, commitment, holdDetail{Action: "release", Hold: id, Kind: holds[i].Kind, Via: actor.Via}, time.Time{}); err != nil {
		return err
	}
	return s.comp.ReleaseHold(ctx, id, s.now(), actor.Principal)
}

// Holds returns every hold, released ones too.
func (s *Service) Holds(ctx context.Context) ([]store.Hold, error) { return s.comp.Holds(ctx) }

func (s *Service) activeHolds(ctx context.Context) ([]store.Hold, error) {
	all, err := s.comp.Holds(ctx)
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	return slices.DeleteFunc(all, func(h store.Hold) bool { return !h.Released.IsZero() }), nil
}

// holdOnSubject returns the hold in force on commitment c, or nil.
func (s *Service) holdOnSubject(_ context.Context, holds []store.Hold, c string) *store.Hold {
	for i, h := range holds {
		if h.Kind == HoldSubject && h.Value == c {
			return &holds[i]
		}
	}
	return nil
}

// holdOnRecords refuses with ErrHeld when a principal or range hold covers a record about c.
func (s *Service) holdOnRecords(ctx context.Context, holds []store.Hold, c string) error {
	if !slices.ContainsFunc(holds, func(h store.Hold) bool { return h.Kind != HoldSubject }) {
		return nil
	}
	var held *store.Hold
	var seq int64
	errFound := errors.New("found")
	where := ""
	err := s.searchAll(ctx, store.Query{Subject: c, AfterSeq: -1}, func(log string, r *store.Record) error {
		if h := covering(holds, r.Principal, r.Time, nil); h != nil {
			held, seq, where = h, r.Seq, log
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return fmt.Errorf("check legal holds: %w", err)
	}
	if held != nil {
		if where != "" {
			return fmt.Errorf("erasure refused: %w: hold %s (%s) covers record %d of log %s about this subject", ErrHeld, held.ID, held.Reason, seq, where)
		}
		return fmt.Errorf("erasure refused: %w: hold %s (%s) covers record %d about this subject", ErrHeld, held.ID, held.Reason, seq)
	}
	return nil
}

// covering returns the hold that covers a record of principal at t about the subjects with
// commitments, or nil.
func covering(holds []store.Hold, principal string, t time.Time, commitments []string) *store.Hold {
	for i, h := range holds {
		switch h.Kind {
		case HoldPrincipal:
			if principal != "" && principal == h.Value {
				return &holds[i]
			}
		case HoldSubject:
			if slices.Contains(commitments, h.Value) {
				return &holds[i]
			}
		case HoldRange:
			if (h.From.IsZero() || !t.Before(h.From)) && (h.Until.IsZero() || t.Before(h.Until)) {
				return &holds[i]
			}
		}
	}
	return nil
}

func formatOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
