package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// ServeStdio serves one client over newline-delimited JSON-RPC on in and out, for desktop
// clients that can only launch a command. The client may speak either era: initialize opens a
// legacy session; requests carrying modern _meta are served statelessly. It returns when in ends.
func (g *Gateway) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	var wmu sync.Mutex
	write := func(msg []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = out.Write(append(msg, '\n'))
	}
	var (
		mu       sync.Mutex
		inflight = map[jsonrpc.ID]context.CancelFunc{}
		sess     *session
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	defer func() {
		if sess != nil {
			g.sessions.remove(sess.id)
		}
	}()
	r := bufio.NewReaderSize(in, 64<<10)
	max := int(g.limits.MaxBodyBytes)
	for {
		line, err := readLine(r, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, errLineTooLong) {
				write(jsonrpc.AppendError(nil, jsonrpc.ID{}, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, fmt.Sprintf("message larger than %d bytes", max))))
				continue
			}
			return fmt.Errorf("read stdin: %w", err)
		}
		if len(line) == 0 {
			continue
		}
		msg, err := jsonrpc.Parse(line, g.lim)
		if err != nil {
			var e *jsonrpc.Error
			errors.As(err, &e)
			write(jsonrpc.AppendError(nil, echoID(msg), e))
			continue
		}
		switch msg.Kind {
		case jsonrpc.KindResponse, jsonrpc.KindError:
			if sess != nil {
				sess.answer(msg)
			}
			continue
		case jsonrpc.KindNotification:
			if msg.Method == mcp.NotificationCancelled {
				raw, _ := jsonrpc.Lookup(msg.Params, "requestId")
				if id, err := parseID(raw); err == nil {
					mu.Lock()
					if cancel := inflight[id]; cancel != nil {
						cancel()
					}
					mu.Unlock()
				}
			}
			continue
		}
		if msg.Method == mcp.MethodInitialize {
			caps, _ := jsonrpc.Lookup(msg.Params, "capabilities")
			info, _ := jsonrpc.Lookup(msg.Params, "clientInfo")
			ictx, cancel := context.WithTimeout(ctx, initWait)
			result, version := g.initialize(ictx, msg.Params)
			cancel()
			if sess != nil {
				g.sessions.remove(sess.id)
			}
			var refused string
			if sess, refused = g.sessions.create(version, caps, info, "", netip.Addr{}); sess == nil {
				write(jsonrpc.AppendError(nil, msg.ID, jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, refused)))
				continue
			}
			sess.direct = write
			write(jsonrpc.AppendResult(nil, msg.ID, result))
			continue
		}
		var c *caller
		p, perr := mcp.ReadParams(msg.Params)
		if perr != nil {
			write(jsonrpc.AppendError(nil, msg.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, msg.Method+": params must be an object")))
			continue
		}
		if p.ProtocolVersion != nil {
			m, pe := p.RequestMeta()
			if pe != nil {
				write(jsonrpc.AppendError(nil, msg.ID, &jsonrpc.Error{Code: pe.Code, Message: pe.Message, Data: pe.Data()}))
				continue
			}
			if !mcp.IsModern(m.ProtocolVersion) {
				pe := &mcp.ProtocolError{Code: mcp.CodeUnsupportedProtocolVersion, Message: "Unsupported protocol version", Requested: m.ProtocolVersion, Supported: mcp.SupportedModern()}
				write(jsonrpc.AppendError(nil, msg.ID, &jsonrpc.Error{Code: pe.Code, Message: pe.Message, Data: pe.Data()}))
				continue
			}
			c = &caller{era: mcpguard.EraModern, version: m.ProtocolVersion, caps: m.ClientCapabilities, info: m.ClientInfo, logLevel: m.LogLevel}
			c.principal = anonymousPrincipal
		}
		if c == nil {
			if sess == nil {
				write(jsonrpc.AppendError(nil, msg.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "send initialize first, or per-request _meta (protocol 2026-07-28)")))
				continue
			}
			c = sess.caller()
			c.principal = anonymousPrincipal
		}
		rctx, cancel := context.WithCancel(ctx)
		mu.Lock()
		if len(inflight) >= maxInflight {
			mu.Unlock()
			cancel()
			write(jsonrpc.AppendError(nil, msg.ID, jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "too many requests in flight")))
			continue
		}
		inflight[msg.ID] = cancel
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(inflight, msg.ID)
				mu.Unlock()
				cancel()
			}()
			if msg.Method == mcp.MethodSubscriptionsListen && c.era == mcpguard.EraModern {
				g.stdioListen(rctx, msg, write)
				return
			}
			rep := g.dispatch(rctx, c, msg, &p, &stdioOut{write: write, sess: c.sess})
			if rctx.Err() != nil && rep.err != nil {
				return // cancelled: no response
			}
			write(encodeReply(msg.ID, rep))
		}()
	}
}

// stdioOut writes a call's related messages straight to the client.
type stdioOut struct {
	write func([]byte)
	sess  *session
}

func (o *stdioOut) notify(method string, params []byte) {
	o.write(jsonrpc.AppendNotification(nil, method, params))
}

func (o *stdioOut) request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	if o.sess == nil {
		return nil, jsonrpc.NewError(mcpguard.CodeClientCannotAnswer, "a stateless client cannot be sent "+method)
	}
	return o.sess.ask(ctx, o.write, method, params)
}

// stdioListen serves a modern subscriptions/listen over stdio until it is cancelled.
func (g *Gateway) stdioListen(ctx context.Context, msg *jsonrpc.Message, write func([]byte)) {
	l, ack := newListener(msg.ID, msg.Params)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.cancel = cancel
	g.lmu.Lock()
	g.listeners[l] = struct{}{}
	g.lmu.Unlock()
	defer func() {
		g.lmu.Lock()
		delete(g.listeners, l)
		g.lmu.Unlock()
	}()
	write(jsonrpc.AppendNotification(nil, mcp.NotificationSubscriptionsAcknowledged,
		[]byte(`{"_meta":{"`+mcp.MetaSubscriptionID+`":`+string(msg.ID.Raw())+`},"notifications":`+string(ack)+`}`)))
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-l.ch:
			write(m)
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one newline-terminated line of at most max bytes. An over-long line is
// consumed and reported as errLineTooLong.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > max+2 {
				tooLong = true
				buf = nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(buf) > 0 && !tooLong {
				return trimEOL(buf), nil
			}
			return nil, err
		}
		if tooLong {
			return nil, errLineTooLong
		}
		return trimEOL(buf), nil
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
