package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
)

// Blocks is the containment step's blocks and suspensions, as the admin API lists, adds and
// lifts them; *contain.Guard implements it, recording each change with its actor.
type Blocks interface {
	List() []contain.Block
	Put(ctx context.Context, b contain.Block) error
	Lift(ctx context.Context, kind, value, actor string) error
}

// BlockRequest is the body of POST /v1/blocks (add) and POST /v1/blocks/lift.
type BlockRequest struct {
	// Kind is "address" (a client address) or "principal" (a suspension).
	Kind string `json:"kind"`
	// Value is the address, or the principal's subject.
	Value string `json:"value"`
	// Reason is required to add; it goes to the audit log.
	Reason string `json:"reason,omitempty"`
	// For is how long the block lasts ("24h"); absent, until lifted.
	For string `json:"for,omitempty"`
}

func (h *handler) listBlocks(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	list := h.blocks.List()
	if list == nil {
		list = []contain.Block{}
	}
	writeJSON(w, map[string]any{"blocks": list, "now": h.now().UTC().Format(time.RFC3339)})
}

// readBlockRequest reads a block request strictly (unknown members, case variants and
// duplicates refused) and puts its value in canonical form.
// CheckBlockTarget checks what a block or suspension names, value of kind, and returns it in
// the form blocks are kept in (an address unmapped, without a zone). field is what the caller
// calls the value, for the error.
func CheckBlockTarget(kind, value, field string) (string, error) {
	switch kind {
	case contain.BlockAddress:
		a, err := netip.ParseAddr(value)
		if err != nil || a.Zone() != "" {
			return value, errors.New(field + " must be an IP address such as 203.0.113.7 or 2001:db8::1")
		}
		return a.Unmap().String(), nil
	case contain.BlockPrincipal:
		if value == "" || len(value) > 1024 {
			return value, errors.New(field + " must be the principal's subject, 1 to 1024 bytes")
		}
		return value, nil
	}
	return value, errors.New(`kind must be "address" or "principal"`)
}

// BlockExpiry is when a block made at now for the duration text ends: zero (until lifted) for
// "", and at most a year on. field and omit are what the caller calls the duration and how its
// user leaves it out, for the error.
func BlockExpiry(text string, now time.Time, field, omit string) (time.Time, error) {
	if text == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 || d > 365*24*time.Hour {
		return time.Time{}, fmt.Errorf(`%s must be a length of time such as "24h", at most 8760h; %s for a block until lifted`, field, omit)
	}
	return now.Add(d), nil
}

func readBlockRequest(w http.ResponseWriter, r *http.Request) (BlockRequest, bool) {
	var req BlockRequest
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		} else {
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		}
		return req, false
	}
	if err := json.Unmarshal(b, &req, json.RejectUnknownMembers(true)); err != nil {
		writeError(w, http.StatusBadRequest, `the body must be JSON such as {"kind":"address","value":"203.0.113.7","reason":"…","for":"24h"}`)
		return req, false
	}
	if req.Value, err = CheckBlockTarget(req.Kind, req.Value, "value"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return req, false
	}
	if len(req.Reason) > maxReasonBytes {
		writeError(w, http.StatusBadRequest, "reason longer than 1024 bytes")
		return req, false
	}
	return req, true
}

func (h *handler) putBlock(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	req, ok := readBlockRequest(w, r)
	if !ok {
		return
	}
	if req.Reason == "" {
		writeError(w, http.StatusBadRequest, "reason is required: say why, for the audit log")
		return
	}
	now := h.now()
	b := contain.Block{Kind: req.Kind, Value: req.Value, Reason: req.Reason, Actor: p.Subject, Created: now}
	var err error
	if b.Expires, err = BlockExpiry(req.For, now, "for", "leave it out"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.blocks.Put(r.Context(), b); err != nil {
		h.logger.Error("block not stored", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the block could not be stored: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, b)
}

func (h *handler) liftBlock(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	req, ok := readBlockRequest(w, r)
	if !ok {
		return
	}
	err := h.blocks.Lift(r.Context(), req.Kind, req.Value, p.Subject)
	switch {
	case errors.Is(err, contain.ErrNoBlock):
		writeError(w, http.StatusNotFound, "no "+req.Kind+" block on "+req.Value)
	case err != nil:
		h.logger.Error("block not lifted", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the block could not be lifted: "+err.Error())
	default:
		writeJSON(w, map[string]string{"lifted": req.Kind, "value": req.Value, "by": p.Subject})
	}
}
