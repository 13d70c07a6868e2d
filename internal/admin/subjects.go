package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// Subjects serves data-subject requests (docs/gdpr.md); the wiring adapts internal/gdpr to it.
type Subjects interface {
	// Export returns every record about subject, decrypted, as the JSON document to answer
	// with, having recorded the request with actor. A *SubjectRefusal says why it was refused.
	Export(ctx context.Context, subject string, actor *authn.Principal) ([]byte, error)
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
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		if s == nil {
			writeError(w, http.StatusNotFound, "no data subjects are configured (compliance.subjects)")
			return
		}
		doc, err := s.Export(r.Context(), r.PathValue("id"), p)
		if err != nil {
			var ref *SubjectRefusal
			if errors.As(err, &ref) {
				writeError(w, ref.Status, ref.Reason)
				return
			}
			h.logger.Error("data-subject export failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, "the export failed; see the gateway's log")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", `attachment; filename="subject-export.json"`)
		_, _ = w.Write(doc)
	}
}
