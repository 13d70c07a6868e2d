package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// fakeSubjects exports "C-1001" and refuses anything else as a bad identifier.
type fakeSubjects struct{ actors []string }

func (f *fakeSubjects) Export(_ context.Context, subject string, actor *authn.Principal) ([]byte, error) {
	f.actors = append(f.actors, actor.Subject)
	if subject != "C-1001" {
		return nil, &SubjectRefusal{Status: http.StatusBadRequest, Reason: "unknown identifier form"}
	}
	return json.Marshal(map[string]any{"subject": subject, "readable": 2})
}

func TestSubjectExportRoute(t *testing.T) {
	gw := &fakeGateway{principals: map[string]*authn.Principal{"alice": alice, "carol": carol, "alice-sso": aliceSSO}}
	subjects := &fakeSubjects{}
	clock := func() time.Time { return testNow }
	srv := httptest.NewServer(NewHandler(gw, NewApprovals(&ApprovalsOptions{Now: clock}), &Options{Now: clock, Subjects: subjects}))
	t.Cleanup(srv.Close)
	a := &adminFixture{gw: gw, srv: srv}

	for _, tc := range []struct {
		name, auth, path string
		status           int
	}{
		{"an MFA operator exports", "alice", "/v1/subjects/C-1001/export", http.StatusOK},
		{"an API key may not", "carol", "/v1/subjects/C-1001/export", http.StatusForbidden},
		{"an operator without MFA may not", "alice-sso", "/v1/subjects/C-1001/export", http.StatusForbidden},
		{"no credential", "", "/v1/subjects/C-1001/export", http.StatusUnauthorized},
		{"a refused identifier says why", "alice", "/v1/subjects/bad/export", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := a.do(t, "GET", tc.path, tc.auth, "", nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if status == http.StatusOK && body["subject"] != "C-1001" {
				t.Errorf("body %v", body)
			}
		})
	}
	if len(subjects.actors) != 2 || subjects.actors[0] != "alice" {
		t.Errorf("exports were asked by %v, want alice twice (the refused ones never reach it)", subjects.actors)
	}

	// Without data subjects configured the route answers 404.
	none := httptest.NewServer(NewHandler(gw, NewApprovals(&ApprovalsOptions{Now: clock}), &Options{Now: clock}))
	t.Cleanup(none.Close)
	if status, _ := (&adminFixture{gw: gw, srv: none}).do(t, "GET", "/v1/subjects/C-1001/export", "alice", "", nil); status != http.StatusNotFound {
		t.Errorf("without subjects: status %d, want 404", status)
	}
}
