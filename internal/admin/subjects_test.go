package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// fakeSubjects exports "C-1001" and refuses anything else as a bad identifier.
type fakeSubjects struct{ actors []string }

func (f *fakeSubjects) Export(_ context.Context, subject, _ string, actor *authn.Principal) ([]byte, error) {
	f.actors = append(f.actors, actor.Subject)
	if subject != "C-1001" {
		return nil, &SubjectRefusal{Status: http.StatusBadRequest, Reason: "unknown identifier form"}
	}
	return json.Marshal(map[string]any{"subject": subject, "readable": 2})
}

func (f *fakeSubjects) Erase(_ context.Context, subject, reason, received string, actor *authn.Principal) ([]byte, error) {
	f.actors = append(f.actors, actor.Subject+" erase "+subject+": "+reason+" received "+received)
	return json.Marshal(map[string]any{"record_seq": 7})
}

func (f *fakeSubjects) Holds(context.Context) ([]byte, error) { return []byte(`{"holds":[]}`), nil }

func (f *fakeSubjects) PlaceHold(_ context.Context, req HoldRequest, actor *authn.Principal) ([]byte, error) {
	f.actors = append(f.actors, actor.Subject+" hold "+req.Principal+": "+req.Reason)
	return json.Marshal(map[string]any{"id": "hold-1"})
}

func (f *fakeSubjects) ReleaseHold(_ context.Context, id string, actor *authn.Principal) ([]byte, error) {
	f.actors = append(f.actors, actor.Subject+" release "+id)
	return json.Marshal(map[string]any{"hold": id})
}

// subjectsAPI is an admin API over fakeSubjects, for alice (an operator with MFA), alice-sso
// (without) and carol (an API key).
func subjectsAPI(t *testing.T) (*adminFixture, *fakeSubjects) {
	gw := &fakeGateway{principals: map[string]*authn.Principal{"alice": alice, "carol": carol, "alice-sso": aliceSSO}}
	subjects := &fakeSubjects{}
	clock := func() time.Time { return testNow }
	srv := httptest.NewServer(NewHandler(gw, NewApprovals(&ApprovalsOptions{Now: clock}), &Options{Now: clock, Subjects: subjects}))
	t.Cleanup(srv.Close)
	return &adminFixture{gw: gw, srv: srv}, subjects
}

// TestSubjectErasureAndHoldRoutes: erasure and holds take a reason and nothing unknown, are for
// operators who logged in with MFA, and reach the service with the operator as actor.
func TestSubjectErasureAndHoldRoutes(t *testing.T) {
	a, subjects := subjectsAPI(t)
	for _, tc := range []struct {
		name, auth, method, path, body string
		status                         int
	}{
		{"erase", "alice", "POST", "/v1/subjects/C-1001/erase", `{"reason":"DSR-17","received":"2026-11-30"}`, http.StatusOK},
		{"erase without a reason", "alice", "POST", "/v1/subjects/C-1001/erase", `{}`, http.StatusBadRequest},
		{"erase with an unknown member", "alice", "POST", "/v1/subjects/C-1001/erase", `{"reason":"x","force":true}`, http.StatusBadRequest},
		{"erase with a duplicate member", "alice", "POST", "/v1/subjects/C-1001/erase", `{"reason":"x","reason":"y"}`, http.StatusBadRequest},
		{"erase by an API key", "carol", "POST", "/v1/subjects/C-1001/erase", `{"reason":"x"}`, http.StatusForbidden},
		{"list holds", "alice", "GET", "/v1/holds", "", http.StatusOK},
		{"place a hold", "alice", "POST", "/v1/holds", `{"principal":"trader-7","reason":"case 12"}`, http.StatusCreated},
		{"place a hold without a reason", "alice", "POST", "/v1/holds", `{"principal":"trader-7"}`, http.StatusBadRequest},
		{"release a hold", "alice", "POST", "/v1/holds/hold-1/release", "", http.StatusOK},
		{"release by nobody", "", "POST", "/v1/holds/hold-1/release", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := a.do(t, tc.method, tc.path, tc.auth, tc.body, nil); status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
		})
	}
	want := []string{"alice erase C-1001: DSR-17 received 2026-11-30", "alice hold trader-7: case 12", "alice release hold-1"}
	if fmt.Sprint(subjects.actors) != fmt.Sprint(want) {
		t.Errorf("the service was asked %q, want %q", subjects.actors, want)
	}
}

func TestSubjectExportRoute(t *testing.T) {
	a, subjects := subjectsAPI(t)
	gw, clock := a.gw, func() time.Time { return testNow }

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
