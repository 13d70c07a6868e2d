package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/gateway/parts"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// Bounds on per-session state that a client's traffic can grow.
const (
	maxStreamEvents    = 1024 // events kept per stream for Last-Event-ID replay
	maxStreamsKept     = 64   // finished streams kept per session for replay
	maxPendingRequests = 64   // server-to-client requests awaiting a client's answer
	maxSubscriptions   = 1024 // resource subscriptions per session
	maxInflight        = 256  // concurrent requests per session
)

// session is one legacy-era client session (Mcp-Session-Id, or one stdio client).
type session struct {
	id      string
	idValue []string   // {id}: the Mcp-Session-Id header's value, shared by every response
	owner   string     // the authenticated principal that opened the session ("" without authentication)
	addr    netip.Addr // the client address that opened it (invalid on stdio)
	version string
	caps    []byte
	info    []byte

	ctx    context.Context // ends when the session ends
	cancel context.CancelFunc

	lastSeen atomic.Int64 // unix nanoseconds
	logLevel atomic.Value // string; "" until logging/setLevel

	mu         sync.Mutex
	nextReq    int64
	pending    map[string]chan *jsonrpc.Message // gateway-assigned request id → the client's answer
	inflight   map[jsonrpc.ID]context.CancelFunc
	subs       map[string]bool
	streams    map[string]*stream
	order      []string // stream ids, oldest first
	nextStream int64
	standalone *stream
	// direct, when set, writes messages straight to the client (stdio): no streams at all.
	direct func(msg []byte)
}

func newSessionID() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *session) touch(now time.Time) { s.lastSeen.Store(now.UnixNano()) }

func (s *session) caller() *caller {
	lvl, _ := s.logLevel.Load().(string)
	return &caller{era: mcpguard.EraLegacy, version: s.version, caps: s.caps, info: s.info, logLevel: lvl, sess: s}
}

func (s *session) setLogLevel(l string) { s.logLevel.Store(l) }

// wantsLog reports whether a notifications/message passes the session's level. A session that
// never set a level gets every message the upstream sends.
func (s *session) wantsLog(params []byte) bool {
	lvl, _ := s.logLevel.Load().(string)
	if lvl == "" {
		return true
	}
	raw, _ := jsonrpc.Lookup(params, "level")
	l, _ := jsonrpc.String(raw)
	return levelIndex(l) >= levelIndex(lvl)
}

func (s *session) subscribe(uri string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on && len(s.subs) < maxSubscriptions {
		s.subs[uri] = true
	} else if !on {
		delete(s.subs, uri)
	}
}

func (s *session) subscribed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[uri]
}

// begin registers an in-flight client request so notifications/cancelled can reach it.
func (s *session) begin(id jsonrpc.ID, cancel context.CancelFunc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) >= maxInflight {
		return false
	}
	s.inflight[id] = cancel
	return true
}

func (s *session) end(id jsonrpc.ID) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.mu.Unlock()
}

// cancelRequest handles a client's notifications/cancelled.
func (s *session) cancelRequest(params []byte) {
	raw, _ := jsonrpc.Lookup(params, "requestId")
	id, err := parseID(raw)
	if err != nil {
		return
	}
	s.mu.Lock()
	cancel := s.inflight[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// parseID reads a raw JSON id.
func parseID(raw []byte) (jsonrpc.ID, error) {
	b := append(append([]byte(`{"jsonrpc":"2.0","id":`), raw...), `,"result":{}}`...)
	msg, err := jsonrpc.Parse(b, jsonrpc.Limits{})
	if err != nil {
		return jsonrpc.ID{}, err
	}
	return msg.ID, nil
}

// answer delivers a client's response to a server-to-client request; false if none awaits it.
func (s *session) answer(msg *jsonrpc.Message) bool {
	s.mu.Lock()
	ch := s.pending[msg.ID.Key()]
	delete(s.pending, msg.ID.Key())
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- msg
	return true
}

// ask sends a server-to-client request over send and waits for the client's answer.
func (s *session) ask(ctx context.Context, send func([]byte), method string, params []byte) ([]byte, *jsonrpc.Error) {
	s.mu.Lock()
	if len(s.pending) >= maxPendingRequests {
		s.mu.Unlock()
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "too many requests awaiting this client's answer")
	}
	s.nextReq++
	id := jsonrpc.StringID("mcpguard-" + strconv.FormatInt(s.nextReq, 10))
	ch := make(chan *jsonrpc.Message, 1)
	s.pending[id.Key()] = ch
	s.mu.Unlock()
	send(jsonrpc.AppendRequest(nil, id, method, params))
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, m.Error
		}
		return m.Result, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, id.Key())
		s.mu.Unlock()
		send(jsonrpc.AppendNotification(nil, mcp.NotificationCancelled, []byte(`{"requestId":`+string(id.Raw())+`,"reason":"the upstream no longer needs the answer"}`)))
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "request cancelled")
	case <-s.ctx.Done():
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the client's session ended")
	}
}

// newStream opens a response stream for one POST.
func (s *session) newStream() *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextStream++
	st := newStream(strconv.FormatInt(s.nextStream, 36))
	s.streams[st.id] = st
	s.order = append(s.order, st.id)
	for len(s.order) > maxStreamsKept {
		old := s.streams[s.order[0]]
		if old != nil && !old.finished() {
			break
		}
		delete(s.streams, s.order[0])
		s.order = s.order[1:]
	}
	return st
}

// forgetStream drops a stream that nobody can resume: its only message, the response, went out
// as a plain JSON body, which carries no event id. Keeping it would hold every such response
// (a 1 MiB tool result, a long tool list) until maxStreamsKept newer streams push it out.
func (s *session) forgetStream(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, id)
	for i := len(s.order) - 1; i >= 0; i-- {
		if s.order[i] == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

func (s *session) stream(id string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "0" {
		return s.standalone
	}
	return s.streams[id]
}

// standaloneSend queues a message for the session's GET stream (or writes it, on stdio).
func (s *session) standaloneSend(msg []byte) {
	if s.direct != nil {
		s.direct(msg)
		return
	}
	s.standalone.push(msg, false)
}

// sessions holds the legacy sessions, bounded in number and idle time.
type sessions struct {
	base context.Context // every session's context derives from it
	max  int
	// perOwner and perAddr bound one authenticated principal's and one address's sessions; 0
	// means unbounded.
	perOwner, perAddr int
	idle              time.Duration
	now               func() time.Time

	mu      sync.Mutex
	byID    map[string]*session
	byOwner map[string]int     // sessions per authenticated owner
	byAddr  map[netip.Addr]int // sessions per client address
}

func newSessions(base context.Context, lim *parts.Limits, now func() time.Time) *sessions {
	ss := &sessions{base: base, max: lim.MaxSessions, perOwner: lim.MaxSessionsPerPrincipal, perAddr: lim.MaxSessionsPerAddress,
		idle: lim.SessionIdleTimeout, now: now, byID: map[string]*session{}, byOwner: map[string]int{}, byAddr: map[netip.Addr]int{}}
	if ss.max <= 0 {
		ss.max = 10000
	}
	if ss.idle <= 0 {
		ss.idle = 30 * time.Minute
	}
	return ss
}

// create makes a session for owner (an authenticated principal, "" for none) at addr (invalid
// on stdio). It returns nil and the limit that refuses it when the gateway, the owner or the
// address already holds as many sessions as allowed.
func (ss *sessions) create(version string, caps, info []byte, owner string, addr netip.Addr) (*session, string) {
	ctx, cancel := context.WithCancel(ss.base)
	id := newSessionID()
	s := &session{
		id: id, idValue: []string{id}, owner: owner, addr: addr, version: version, caps: caps, info: info, ctx: ctx, cancel: cancel,
		pending: map[string]chan *jsonrpc.Message{}, inflight: map[jsonrpc.ID]context.CancelFunc{},
		subs: map[string]bool{}, streams: map[string]*stream{}, standalone: newStream("0"),
	}
	s.touch(ss.now())
	ss.mu.Lock()
	defer ss.mu.Unlock()
	refused := ""
	switch {
	case len(ss.byID) >= ss.max:
		refused = "too many sessions: the gateway's session limit is reached"
	case owner != "" && ss.perOwner > 0 && ss.byOwner[owner] >= ss.perOwner:
		refused = "too many sessions for this principal (limits.max_sessions_per_principal): end unused ones with DELETE"
	case addr.IsValid() && ss.perAddr > 0 && ss.byAddr[addr] >= ss.perAddr:
		refused = "too many sessions from this address (limits.max_sessions_per_address): end unused ones with DELETE"
	}
	if refused != "" {
		cancel()
		return nil, refused
	}
	ss.byID[s.id] = s
	if owner != "" {
		ss.byOwner[owner]++
	}
	if addr.IsValid() {
		ss.byAddr[addr]++
	}
	return s, ""
}

// forget drops s from the per-owner and per-address counts; ss.mu is held.
func (ss *sessions) forget(s *session) {
	if s.owner != "" {
		if ss.byOwner[s.owner]--; ss.byOwner[s.owner] <= 0 {
			delete(ss.byOwner, s.owner)
		}
	}
	if s.addr.IsValid() {
		if ss.byAddr[s.addr]--; ss.byAddr[s.addr] <= 0 {
			delete(ss.byAddr, s.addr)
		}
	}
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s != nil {
		s.touch(ss.now())
	}
	return s
}

func (ss *sessions) remove(id string) bool {
	ss.mu.Lock()
	s := ss.byID[id]
	if s != nil {
		delete(ss.byID, id)
		ss.forget(s)
	}
	ss.mu.Unlock()
	if s != nil {
		s.close()
	}
	return s != nil
}

func (s *session) close() {
	s.cancel()
	s.standalone.finish()
}

func (ss *sessions) each(fn func(*session)) {
	ss.mu.Lock()
	list := make([]*session, 0, len(ss.byID))
	for _, s := range ss.byID {
		list = append(list, s)
	}
	ss.mu.Unlock()
	for _, s := range list {
		fn(s)
	}
}

// verbosest returns the most verbose log level any session asked for, or "".
func (ss *sessions) verbosest() string {
	best := ""
	ss.each(func(s *session) {
		l, _ := s.logLevel.Load().(string)
		if l != "" && (best == "" || levelIndex(l) < levelIndex(best)) {
			best = l
		}
	})
	return best
}

func (ss *sessions) reap(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := ss.now().Add(-ss.idle).UnixNano()
		var dead []string
		ss.each(func(s *session) {
			if s.lastSeen.Load() < cutoff {
				dead = append(dead, s.id)
			}
		})
		for _, id := range dead {
			ss.remove(id)
		}
	}
}

func (ss *sessions) closeAll() {
	ss.mu.Lock()
	list := ss.byID
	ss.byID, ss.byOwner, ss.byAddr = map[string]*session{}, map[string]int{}, map[netip.Addr]int{}
	ss.mu.Unlock()
	for _, s := range list {
		s.close()
	}
}

// raiseUpstreamLevel asks a legacy upstream that logs for log messages at the most verbose level
// any session wants; the gateway filters per session. It gives up after the upstream's timeout.
func (g *Gateway) raiseUpstreamLevel(ctx context.Context, up *upstream.Upstream) {
	level := g.sessions.verbosest()
	if level == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, up.Timeout())
	defer cancel()
	inf, err := up.Info(ctx)
	if err != nil || inf.Era != mcpguard.EraLegacy {
		return
	}
	if _, logs := jsonrpc.Lookup(inf.Capabilities, "logging"); !logs {
		return
	}
	if _, err := up.Call(ctx, &upstream.Request{Method: mcp.MethodLoggingSetLevel, Params: []byte(`{"level":` + string(jsonrpc.Quote(level)) + `}`)}, nil); err != nil {
		g.logger.Debug("setting upstream log level failed", "upstream", up.Name(), "err", err)
	}
}
