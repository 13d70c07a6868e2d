package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// fakeWire is an in-memory wire: what the mux sends arrives on sent, what the test pushes on
// toMux is received by the mux.
type fakeWire struct {
	sent   chan []byte
	toMux  chan inbound
	closed chan struct{}
	once   sync.Once
}

func newFakeWire() *fakeWire {
	return &fakeWire{sent: make(chan []byte, 64), toMux: make(chan inbound, 64), closed: make(chan struct{})}
}

func (w *fakeWire) send(ctx context.Context, msg []byte, _ jsonrpc.Kind, _ jsonrpc.ID) error {
	select {
	case w.sent <- append([]byte(nil), msg...):
		return nil
	case <-w.closed:
		return mcpguard.ErrClosed
	}
}

func (w *fakeWire) recv(ctx context.Context) (inbound, error) {
	select {
	case in := <-w.toMux:
		return in, nil
	case <-w.closed:
		return inbound{}, mcpguard.ErrClosed
	case <-ctx.Done():
		return inbound{}, ctx.Err()
	}
}

func (w *fakeWire) done() <-chan struct{} { return w.closed }
func (w *fakeWire) close() error          { w.once.Do(func() { close(w.closed) }); return nil }

// next returns the next message the mux sent, parsed.
func (w *fakeWire) next(t *testing.T) *jsonrpc.Message {
	t.Helper()
	select {
	case b := <-w.sent:
		m, err := jsonrpc.Parse(b, jsonrpc.Limits{})
		if err != nil {
			t.Fatalf("mux sent an invalid message %s: %v", b, err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("mux sent nothing")
		return nil
	}
}

func (w *fakeWire) push(s string, related jsonrpc.ID) {
	w.toMux <- inbound{data: []byte(s), related: related}
}

// recSink records what a call receives and answers server-to-client requests with its name.
type recSink struct {
	name     string
	mu       sync.Mutex
	notes    []string
	requests []string
}

func (s *recSink) Notify(method string, params []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, method+" "+string(params))
}

func (s *recSink) Request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	s.mu.Lock()
	s.requests = append(s.requests, method)
	s.mu.Unlock()
	return []byte(`{"answeredBy":"` + s.name + `"}`), nil
}

func testMux(t *testing.T) (*mux, *fakeWire) {
	t.Helper()
	w := newFakeWire()
	up := &Upstream{name: "fake", logger: slog.New(slog.DiscardHandler)}
	m := newMux(t.Context(), up, w)
	t.Cleanup(func() { _ = m.close() })
	return m, w
}

type callResult struct {
	resp *Response
	err  error
}

func startCall(m *mux, ctx context.Context, params string, sink Sink) chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		r, err := m.call(ctx, &Request{ID: jsonrpc.IntID(1), Method: "tools/call", Params: []byte(params)}, sink)
		ch <- callResult{r, err}
	}()
	return ch
}

func TestMuxRemapsIDsAndProgressTokens(t *testing.T) {
	m, w := testMux(t)
	a, b := &recSink{name: "a"}, &recSink{name: "b"}
	// Two callers use the same request id and the same progress token.
	ra := startCall(m, context.Background(), `{"name":"x","_meta":{"progressToken":"tok"}}`, a)
	ma := w.next(t)
	rb := startCall(m, context.Background(), `{"name":"x","_meta":{"progressToken":"tok"}}`, b)
	mb := w.next(t)
	if ma.ID == mb.ID {
		t.Fatalf("both calls reached the upstream with id %s", ma.ID)
	}
	tokA, _ := jsonrpc.Lookup(ma.Params, "_meta")
	tokB, _ := jsonrpc.Lookup(mb.Params, "_meta")
	if string(tokA) == string(tokB) || strings.Contains(string(tokA), `"tok"`) {
		t.Fatalf("progress tokens not remapped: %s and %s", tokA, tokB)
	}
	pa, _ := jsonrpc.Lookup(tokA, "progressToken")
	// Progress for a's token reaches a only, with a's own token restored.
	w.push(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":`+string(pa)+`,"progress":1}}`, jsonrpc.ID{})
	// Answer in reverse order.
	w.push(`{"jsonrpc":"2.0","id":`+string(mb.ID.Raw())+`,"result":{"who":"b"}}`, jsonrpc.ID{})
	w.push(`{"jsonrpc":"2.0","id":`+string(ma.ID.Raw())+`,"result":{"who":"a"}}`, jsonrpc.ID{})
	got := map[string]string{}
	for name, ch := range map[string]chan callResult{"a": ra, "b": rb} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("call %s: %v", name, r.err)
		}
		got[name] = string(r.resp.Result)
	}
	if got["a"] != `{"who":"a"}` || got["b"] != `{"who":"b"}` {
		t.Errorf("responses crossed: %v", got)
	}
	if len(a.notes) != 1 || !strings.Contains(a.notes[0], `"progressToken":"tok"`) || len(b.notes) != 0 {
		t.Errorf("progress went astray: a=%v b=%v", a.notes, b.notes)
	}
}

func TestMuxRoutesServerRequests(t *testing.T) {
	m, w := testMux(t)
	a, b := &recSink{name: "a"}, &recSink{name: "b"}
	ra := startCall(m, context.Background(), `{"name":"x"}`, a)
	ma := w.next(t)
	rb := startCall(m, context.Background(), `{"name":"y"}`, b)
	mb := w.next(t)
	// On HTTP the reply stream names the call: route to b.
	w.push(`{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{}}`, mb.ID)
	if ans := w.next(t); ans.Kind != jsonrpc.KindResponse || !strings.Contains(string(ans.Result), `"b"`) || ans.ID != jsonrpc.StringID("s1") {
		t.Errorf("related request answered by %s (id %s), want b with id s1", ans.Result, ans.ID)
	}
	// On stdio nothing names the call: the oldest call in flight (a) answers.
	w.push(`{"jsonrpc":"2.0","id":"s2","method":"sampling/createMessage","params":{}}`, jsonrpc.ID{})
	if ans := w.next(t); !strings.Contains(string(ans.Result), `"a"`) {
		t.Errorf("unattributed request answered by %s, want the oldest call a", ans.Result)
	}
	w.push(`{"jsonrpc":"2.0","id":`+string(ma.ID.Raw())+`,"result":{}}`, jsonrpc.ID{})
	w.push(`{"jsonrpc":"2.0","id":`+string(mb.ID.Raw())+`,"result":{}}`, jsonrpc.ID{})
	<-ra
	<-rb
}

func TestMuxCancelsUpstreamWhenCallerLeaves(t *testing.T) {
	m, w := testMux(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := startCall(m, ctx, `{"name":"slow"}`, &recSink{})
	sent := w.next(t)
	cancel()
	res := <-r
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled call returned %v", res.err)
	}
	note := w.next(t)
	if note.Method != "notifications/cancelled" || !strings.Contains(string(note.Params), fmt.Sprintf(`"requestId":%s`, sent.ID.Raw())) {
		t.Errorf("upstream got %s %s, want notifications/cancelled for %s", note.Method, note.Params, sent.ID)
	}
	// A late answer to the cancelled call is dropped, and the mux keeps working.
	w.push(`{"jsonrpc":"2.0","id":`+string(sent.ID.Raw())+`,"result":{}}`, jsonrpc.ID{})
	r2 := startCall(m, context.Background(), `{"name":"next"}`, nil)
	m2 := w.next(t)
	w.push(`{"jsonrpc":"2.0","id":`+string(m2.ID.Raw())+`,"result":{"ok":true}}`, jsonrpc.ID{})
	if res := <-r2; res.err != nil || string(res.resp.Result) != `{"ok":true}` {
		t.Errorf("call after a cancellation: %v %v", res.resp, res.err)
	}
}

func TestMuxFailsPendingCallsWhenConnectionDies(t *testing.T) {
	m, w := testMux(t)
	r := startCall(m, context.Background(), `{"name":"x"}`, nil)
	w.next(t)
	_ = w.close()
	res := <-r
	if !errors.Is(res.err, mcpguard.ErrUpstreamDown) {
		t.Fatalf("pending call after the connection died: %v, want ErrUpstreamDown", res.err)
	}
	if _, err := m.call(context.Background(), &Request{Method: "tools/list"}, nil); !errors.Is(err, mcpguard.ErrUpstreamDown) {
		t.Errorf("call on a dead connection: %v, want ErrUpstreamDown", err)
	}
}

// TestMuxEndsWithTheUpstream: when the upstream shuts down, its connection ends with it, and a
// pending call learns that the upstream closed rather than that reading from it failed.
func TestMuxEndsWithTheUpstream(t *testing.T) {
	w := newFakeWire()
	up := &Upstream{name: "fake", logger: slog.New(slog.DiscardHandler)}
	lifetime, shutdown := context.WithCancel(t.Context())
	m := newMux(lifetime, up, w)
	t.Cleanup(func() { _ = m.close() })
	r := startCall(m, t.Context(), `{"name":"x"}`, nil)
	w.next(t)
	shutdown()
	res := <-r
	if !errors.Is(res.err, mcpguard.ErrUpstreamDown) || !strings.Contains(res.err.Error(), `upstream "fake" closed`) {
		t.Fatalf("pending call when the upstream shut down: %v, want ErrUpstreamDown saying it closed", res.err)
	}
	select {
	case <-m.done():
	default:
		t.Error("the connection outlived the upstream")
	}
}
