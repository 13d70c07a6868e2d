package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// Subjects serves data-subject requests and legal holds (docs/gdpr.md) on the running gateway's
// own log; the wiring adapts internal/gdpr to it. Each method records the request with actor
// before it takes effect; a *SubjectRefusal says why one was refused. Every answer is the JSON
// document to answer with.
type Subjects interface {
	// Export returns every record about subject, decrypted. received is when the subject's
	// request arrived, as given ("" none; the service checks it).
	Export(ctx context.Context, subject, received string, actor *authn.Principal) ([]byte, error)
	// Erase destroys the subject's key, as `mcpguard gdpr erase` does.
	Erase(ctx context.Context, subject, reason, received string, actor *authn.Principal) ([]byte, error)
	// Holds lists the legal holds, released ones too.
	Holds(ctx context.Context) ([]byte, error)
	// PlaceHold places a legal hold on exactly one of a principal, a subject or a time range.
	PlaceHold(ctx context.Context, req HoldRequest, actor *authn.Principal) ([]byte, error)
	// ReleaseHold releases the hold in force with id.
	ReleaseHold(ctx context.Context, id string, actor *authn.Principal) ([]byte, error)
}

// HoldRequest is the body of POST /v1/holds: exactly one of principal, subject, or a time range
// (from inclusive, until exclusive, RFC 3339; either may be left out), and a reason.
type HoldRequest struct {
	Principal string    `json:"principal,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	From      time.Time `json:"from,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	Reason    string    `json:"reason"`
}

// EraseRequest is the body of POST /v1/subjects/{id}/erase. Received is when the subject's
// request arrived (2026-11-30 or RFC 3339), for the report's time to completion.
type EraseRequest struct {
	Reason   string `json:"reason"`
	Received string `json:"received,omitempty"`
}

// SubjectRefusal is a data-subject request refused for a reason the operator may read: a bad
// identifier (400), no data subjects configured (404), a legal hold (409).
type SubjectRefusal struct {
	Status int
	Reason string
}

func (e *SubjectRefusal) Error() string { return e.Reason }

// exportSubject serves GET /v1/subjects/{id}/export: a subject's records as portable JSON, to an
// operator who logged in with MFA. Without data subjects configured it answers 404.
func exportSubject(s Subjects, h *handler) func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	return subjectRoute(s, h, "the export", http.StatusOK, func(r *http.Request, p *authn.Principal, w http.ResponseWriter) ([]byte, error) {
		w.Header().Set("Content-Disposition", `attachment; filename="subject-export.json"`)
		return s.Export(r.Context(), r.PathValue("id"), r.URL.Query().Get("received"), p)
	})
}

// eraseSubject serves POST /v1/subjects/{id}/erase {"reason": "…"}.
func eraseSubject(s Subjects, h *handler) func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	return subjectRoute(s, h, "the erasure", http.StatusOK, func(r *http.Request, p *authn.Principal, _ http.ResponseWriter) ([]byte, error) {
		var req EraseRequest
		if err := readBody(r, &req); err != nil {
			return nil, err
		}
		if req.Reason == "" {
			return nil, &SubjectRefusal{Status: http.StatusBadRequest, Reason: "reason is required: the request's reference (a ticket, the subject's letter), for the audit log"}
		}
		return s.Erase(r.Context(), r.PathValue("id"), req.Reason, req.Received, p)
	})
}

// listHolds serves GET /v1/holds.
func listHolds(s Subjects, h *handler) func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	return subjectRoute(s, h, "the list of holds", http.StatusOK, func(r *http.Request, _ *authn.Principal, _ http.ResponseWriter) ([]byte, error) {
		return s.Holds(r.Context())
	})
}

// placeHold serves POST /v1/holds.
func placeHold(s Subjects, h *handler) func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	return subjectRoute(s, h, "the hold", http.StatusCreated, func(r *http.Request, p *authn.Principal, _ http.ResponseWriter) ([]byte, error) {
		var req HoldRequest
		if err := readBody(r, &req); err != nil {
			return nil, err
		}
		if req.Reason == "" {
			return nil, &SubjectRefusal{Status: http.StatusBadRequest, Reason: "reason is required: the matter the hold is for, for the audit log"}
		}
		return s.PlaceHold(r.Context(), req, p)
	})
}

// releaseHold serves POST /v1/holds/{id}/release.
func releaseHold(s Subjects, h *handler) func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	return subjectRoute(s, h, "the release", http.StatusOK, func(r *http.Request, p *authn.Principal, _ http.ResponseWriter) ([]byte, error) {
		return s.ReleaseHold(r.Context(), r.PathValue("id"), p)
	})
}

// subjectRoute is the one shape of the data-subject and hold routes: 404 without data subjects
// configured, a refusal's own status and reason, 503 for anything else (logged), and the
// document with status ok, never cached.
func subjectRoute(s Subjects, h *handler, what string, ok int, do func(*http.Request, *authn.Principal, http.ResponseWriter) ([]byte, error)) func(http.ResponseWriter, *http.Request, *authn.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		if s == nil {
			writeError(w, http.StatusNotFound, "no data subjects are configured (compliance.subjects)")
			return
		}
		doc, err := do(r, p, w)
		if err != nil {
			var ref *SubjectRefusal
			if errors.As(err, &ref) {
				w.Header().Del("Content-Disposition")
				writeError(w, ref.Status, ref.Reason)
				return
			}
			h.logger.Error("data-subject request failed", "request", what, "err", err)
			w.Header().Del("Content-Disposition")
			writeError(w, http.StatusServiceUnavailable, what+" failed; see the gateway's log")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(ok)
		_, _ = w.Write(doc)
	}
}

// readBody reads a bounded JSON body into v: unknown or duplicate members are refused.
func readBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &SubjectRefusal{Status: http.StatusRequestEntityTooLarge, Reason: "request body too large"}
		}
		return &SubjectRefusal{Status: http.StatusBadRequest, Reason: "reading the body: " + err.Error()}
	}
	if err := json.Unmarshal(b, v, json.RejectUnknownMembers(true)); err != nil {
		return &SubjectRefusal{Status: http.StatusBadRequest, Reason: "the body is not the JSON this route takes: " + err.Error()}
	}
	return nil
}
