package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// TestShedCallGets503WithRetryAfter: a call the upstream's circuit breaker or bulkhead refused
// gets 503, -31010 and the Retry-After the breaker computed, rounded up to whole seconds.
func TestShedCallGets503WithRetryAfter(t *testing.T) {
	r := errorReply(&upstream.Unavailable{Upstream: "finance", Reason: "its circuit breaker is open", RetryAfter: 1500 * time.Millisecond})
	if r.err == nil || r.err.Code != -31010 || r.status != http.StatusServiceUnavailable {
		t.Fatalf("reply %+v, want -31010 with 503", r)
	}
	if !strings.Contains(r.err.Message, "circuit breaker is open") {
		t.Errorf("message %q does not say why", r.err.Message)
	}
	w := httptest.NewRecorder()
	writeJSON(w, r.status, jsonrpc.AppendError(nil, jsonrpc.ID{}, r.err))
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", got)
	}
}
