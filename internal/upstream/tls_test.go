package upstream

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// TestInsecureSkipVerify: an https upstream whose certificate no trusted CA signed is never sent
// a request unless tls_insecure_skip_verify is set; with it set, calls go through and the
// gateway says, once, at start, that the upstream is not verified.
func TestInsecureSkipVerify(t *testing.T) {
	h := sdkEchoHandler("self-signed")
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	call := func(up *Upstream) (*Response, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return up.Call(ctx, &Request{ID: jsonrpc.IntID(1), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"hi"}}`)}, nil)
	}

	t.Run("verified", func(t *testing.T) {
		var logs testenv.Buffer
		up, err := New(Spec{Name: "selfsigned", Timeout: 2 * time.Second, HTTP: &HTTPSpec{URL: srv.URL, Era: mcpguard.EraLegacy}}, 0,
			&Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		up.Start(t.Context())
		t.Cleanup(func() { up.Close() })
		if resp, err := call(up); err == nil {
			t.Fatalf("a call reached an upstream whose certificate nobody vouches for: %+v", resp)
		}
		if n := served.Load(); n != 0 {
			t.Errorf("the upstream was sent %d requests over a connection it was not verified on", n)
		}
		if strings.Contains(logs.String(), "not verified") {
			t.Errorf("warned of an unverified upstream while verifying it:\n%s", logs.String())
		}
	})

	t.Run("insecure", func(t *testing.T) {
		var logs testenv.Buffer
		up, err := New(Spec{Name: "selfsigned", Timeout: 2 * time.Second, HTTP: &HTTPSpec{URL: srv.URL, Era: mcpguard.EraLegacy, TLSInsecureSkipVerify: true}}, 0,
			&Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(logs.String(), "upstream certificate not verified"); got != 1 {
			t.Errorf("%d warnings at start, want 1:\n%s", got, logs.String())
		}
		up.Start(t.Context())
		t.Cleanup(func() { up.Close() })
		resp, err := call(up)
		if err != nil || resp.Error != nil || !strings.Contains(string(resp.Result), `"hi"`) {
			t.Fatalf("call with verification off: %v, %+v", err, resp)
		}
	})
}
