package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/sse"
)

// initWait bounds how long initialize and server/discover wait for upstreams to connect.
const initWait = 10 * time.Second

// Bounds on modern listen streams.
const (
	maxListeners     = 10000
	listenQueue      = 64
	maxListenURIs    = 1024
	maxListenURIByte = 2048
)

// listener is one modern client's subscriptions/listen stream.
type listener struct {
	id        jsonrpc.ID
	tools     bool
	prompts   bool
	resources bool
	uris      map[string]bool
	ch        chan []byte
	cancel    context.CancelFunc
}

// offer queues a notification if the listener asked for it; a listener too slow to keep up
// loses notifications rather than holding the gateway back.
func (l *listener) offer(method string, params []byte, uri string) {
	switch method {
	case mcp.NotificationToolsListChanged:
		if !l.tools {
			return
		}
	case mcp.NotificationPromptsListChanged:
		if !l.prompts {
			return
		}
	case mcp.NotificationResourcesListChanged:
		if !l.resources {
			return
		}
	case mcp.NotificationResourcesUpdated:
		if !l.uris[uri] {
			return
		}
	default:
		return
	}
	if params == nil {
		params = []byte(`{}`)
	}
	meta, ok := jsonrpc.Lookup(params, "_meta")
	if !ok {
		meta = []byte(`{}`)
	}
	params = jsonrpc.SetMember(params, "_meta", jsonrpc.SetMember(meta, mcp.MetaSubscriptionID, l.id.Raw()))
	select {
	case l.ch <- jsonrpc.AppendNotification(nil, method, params):
	default:
	}
}

// newListener reads a subscriptions/listen filter and returns the listener and the acknowledged
// subset (every kind the client asked for: the gateway honours them all).
func newListener(id jsonrpc.ID, params []byte) (*listener, []byte) {
	l := &listener{id: id, uris: map[string]bool{}, ch: make(chan []byte, listenQueue)}
	filter, _ := jsonrpc.Lookup(params, "notifications")
	ack := []byte(`{}`)
	flag := func(key string, dst *bool) {
		if v, ok := jsonrpc.Lookup(filter, key); ok && string(v) == "true" {
			*dst = true
			ack = jsonrpc.SetMember(ack, key, []byte("true"))
		}
	}
	flag("toolsListChanged", &l.tools)
	flag("promptsListChanged", &l.prompts)
	flag("resourcesListChanged", &l.resources)
	if list, ok := jsonrpc.Lookup(filter, "resourceSubscriptions"); ok {
		acked := []byte{'['}
		_ = jsonrpc.Elements(list, func(e []byte) error {
			u, ok := jsonrpc.String(e)
			if ok && len(l.uris) < maxListenURIs && len(u) <= maxListenURIByte {
				if len(l.uris) > 0 {
					acked = append(acked, ',')
				}
				l.uris[u] = true
				acked = append(acked, e...)
			}
			return nil
		})
		ack = jsonrpc.SetMember(ack, "resourceSubscriptions", append(acked, ']'))
	}
	return l, ack
}

// serveListen holds a modern client's subscriptions/listen stream open: first the
// acknowledgement, then the change notifications it asked for, tagged with its subscription id.
func (g *Gateway) serveListen(w http.ResponseWriter, r *http.Request, c *caller, msg *jsonrpc.Message) {
	l, ack := newListener(msg.ID, msg.Params)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	l.cancel = cancel
	g.lmu.Lock()
	if len(g.listeners) >= maxListeners {
		g.lmu.Unlock()
		writeError(w, http.StatusServiceUnavailable, msg.ID, 0, "too many listen streams", nil)
		return
	}
	g.listeners[l] = struct{}{}
	g.lmu.Unlock()
	defer func() {
		g.lmu.Lock()
		delete(g.listeners, l)
		g.lmu.Unlock()
	}()
	startSSE(w, http.StatusOK)
	sw := sse.NewWriter(w)
	params := []byte(`{"_meta":{"` + mcp.MetaSubscriptionID + `":` + string(msg.ID.Raw()) + `},"notifications":` + string(ack) + `}`)
	if sw.WriteEvent(sse.Event{Type: "message", Data: jsonrpc.AppendNotification(nil, mcp.NotificationSubscriptionsAcknowledged, params)}) != nil || sw.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-l.ch:
			if sw.WriteEvent(sse.Event{Type: "message", Data: m}) != nil || sw.Flush() != nil {
				return
			}
		case <-tick.C:
			if sw.WriteComment("") != nil || sw.Flush() != nil {
				return
			}
		}
	}
}
