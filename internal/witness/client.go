package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// ClientOptions configures a Client.
type ClientOptions struct {
	Logger *slog.Logger // nil: discard
	// HTTPClient sends the requests (default: a 10 s timeout per request, no redirects).
	HTTPClient *http.Client
	// Dir, when set, receives every checkpoint the witness cosigned, with its cosignature, as
	// witnessed-<size>-<key id> (the log's checkpoint directory).
	Dir string
	// MinBackoff and MaxBackoff bound the wait between attempts after a failure (defaults
	// 100 ms and 30 s, doubling).
	MinBackoff, MaxBackoff time.Duration
}

// Client submits the audit log's checkpoints to one witness and keeps the cosignatures. It is
// an audit.Witness: the log offers each checkpoint without waiting, and the client's goroutine
// sends the newest one it holds, retrying with backoff while the witness is unreachable. A
// newer checkpoint replaces one not yet sent (cosigning the newest vouches for every older
// one), so the client holds at most one. A witness that is down never slows or stops the log.
//
// The client starts knowing nothing of the witness's state: its first request says old size 0,
// and a witness that has cosigned before answers 409 with its size, from which the client
// proves consistency. It then remembers the size the witness last cosigned.
type Client struct {
	url      string
	verifier note.Verifier
	hc       *http.Client
	dir      string
	logger   *slog.Logger
	min, max time.Duration

	mu      sync.Mutex
	pending *audit.SignedCheckpoint
	wake    chan struct{}
	closing chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc // stops the goroutine's requests when Close gives up
	once    sync.Once

	known atomic.Int64 // the size the witness last cosigned, -1 until learned

	cosigned, failures, refused, superseded atomic.Int64
}

// NewClient starts a client of the witness served at url (its submission prefix: requests go
// to url/add-checkpoint) whose cosignatures verify with verifier.
func NewClient(url string, verifier note.Verifier, opts *ClientOptions) *Client {
	o := ClientOptions{}
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{url: strings.TrimSuffix(url, "/"), verifier: verifier, hc: o.HTTPClient, dir: o.Dir,
		logger: o.Logger.With("witness", verifier.Name(), "url", url), min: o.MinBackoff, max: o.MaxBackoff,
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	// The client outlives the call that starts it; Close ends its requests.
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.known.Store(-1)
	go c.run(ctx)
	return c
}

// OfferCheckpoint hands over a checkpoint the log just signed; it never blocks.
func (c *Client) OfferCheckpoint(cp audit.SignedCheckpoint) {
	c.mu.Lock()
	if c.pending != nil {
		if c.pending.Size >= cp.Size {
			c.mu.Unlock()
			return
		}
		c.superseded.Add(1)
	}
	c.pending = &cp
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close sends the checkpoint the client holds, if any, until ctx ends, and stops the client.
func (c *Client) Close(ctx context.Context) error {
	c.once.Do(func() { close(c.closing) })
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
	}
	c.cancel()
	c.mu.Lock()
	left := c.pending
	c.mu.Unlock()
	c.logger.Info("witness client closed", "cosigned", c.cosigned.Load(), "failures", c.failures.Load(), "refused", c.refused.Load())
	if left != nil {
		return fmt.Errorf("witness %s: the checkpoint of %d records was not cosigned before the client closed", c.verifier.Name(), left.Size)
	}
	return nil
}

// Cosigned counts the checkpoints the witness cosigned.
func (c *Client) Cosigned() int64 { return c.cosigned.Load() }

// Failures counts the attempts that failed and were retried (unreachable, 5xx, 408, 429).
func (c *Client) Failures() int64 { return c.failures.Load() }

// Refused counts the checkpoints the witness refused, which are not retried: a log that no
// longer extends what the witness cosigned, a wrong key, an unknown origin.
func (c *Client) Refused() int64 { return c.refused.Load() }

// Superseded counts the checkpoints replaced by a newer one before they were sent.
func (c *Client) Superseded() int64 { return c.superseded.Load() }

// WitnessSize returns the size the witness last cosigned, as far as the client knows (-1: not
// yet known).
func (c *Client) WitnessSize() int64 { return c.known.Load() }

// next waits for a checkpoint to send; false once the client is closing with nothing left, or
// has been told to stop.
func (c *Client) next(ctx context.Context) (audit.SignedCheckpoint, bool) {
	for {
		c.mu.Lock()
		p := c.pending
		c.mu.Unlock()
		if p != nil {
			return *p, true
		}
		select {
		case <-c.wake:
		case <-c.closing:
			c.mu.Lock()
			p := c.pending
			c.mu.Unlock()
			if p == nil {
				return audit.SignedCheckpoint{}, false
			}
		case <-ctx.Done():
			return audit.SignedCheckpoint{}, false
		}
	}
}

// settled forgets the pending checkpoint if it is still cp (a newer one may have replaced it).
func (c *Client) settled(cp audit.SignedCheckpoint) {
	c.mu.Lock()
	if c.pending != nil && c.pending.Size == cp.Size {
		c.pending = nil
	}
	c.mu.Unlock()
}

func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	backoff := time.Duration(0)
	for {
		cp, ok := c.next(ctx)
		if !ok || ctx.Err() != nil {
			return
		}
		err := c.submit(ctx, cp)
		if err == nil {
			backoff = 0
			c.settled(cp)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if _, refused := errors.AsType[*refusedError](err); refused {
			c.refused.Add(1)
			c.logger.Error("the witness refused the audit checkpoint; it is not retried", "size", cp.Size, "err", err)
			backoff = 0
			c.settled(cp)
			continue
		}
		n := c.failures.Add(1)
		if n == 1 || n%10 == 0 {
			c.logger.Warn("audit checkpoint not yet cosigned by the witness; retrying", "size", cp.Size, "failures", n, "err", err)
		}
		// While closing, retry at the shortest interval until Close's deadline; the first
		// wait that Close interrupts is cut short.
		backoff = min(max(2*backoff, c.min), c.max)
		closing := c.closing
		select {
		case <-c.closing:
			backoff, closing = c.min, nil
		default:
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-closing:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// refusedError is an answer that retrying will not change.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// submit sends cp with a consistency proof from the size the witness last cosigned, learning
// that size from a 409 when it is not known, and stores the cosignature.
func (c *Client) submit(ctx context.Context, cp audit.SignedCheckpoint) error {
	for range 3 { // a 409 teaches the size; a second 409 means another client moved it meanwhile
		old := max(c.known.Load(), 0)
		if old > cp.Size {
			return &refusedError{fmt.Sprintf("the witness has cosigned a checkpoint of %d records, more than this one's %d: the audit log was truncated or replaced since (run mcpguard audit verify with --witness)", old, cp.Size)}
		}
		var proof tlog.TreeProof
		if old > 0 && old < cp.Size {
			var err error
			if proof, err = cp.Prove(ctx, old); err != nil {
				return fmt.Errorf("consistency proof from %d to %d records: %w", old, cp.Size, err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/add-checkpoint", bytes.NewReader(formatAddRequest(old, proof, cp.Note)))
		if err != nil {
			return &refusedError{err.Error()}
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
		resp.Body.Close()
		if err != nil {
			return err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return c.cosignedBy(cp, body)
		case resp.StatusCode == http.StatusConflict:
			size, err := parseSize(strings.TrimSuffix(string(body), "\n"))
			if err != nil || resp.Header.Get("Content-Type") != sizeContentType {
				return &refusedError{fmt.Sprintf("409 without a size (%q)", clip(body))}
			}
			c.known.Store(size)
		case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			return fmt.Errorf("witness answered %s: %s", resp.Status, clip(body))
		case resp.StatusCode == http.StatusUnprocessableEntity:
			return &refusedError{fmt.Sprintf("the witness answered %s: %s: the audit log is not an extension of the checkpoint of %d records it cosigned; the log was rewritten, or truncated and appended to (run mcpguard audit verify with --witness)", resp.Status, clip(body), old)}
		default:
			return &refusedError{fmt.Sprintf("the witness answered %s: %s", resp.Status, clip(body))}
		}
	}
	return errors.New("the witness kept answering 409 Conflict")
}

// cosignedBy checks the witness's answer (its cosignature lines) against its key, remembers
// the new size, and writes the cosigned checkpoint into Dir.
func (c *Client) cosignedBy(cp audit.SignedCheckpoint, body []byte) error {
	var mine []byte
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "— ") || !strings.HasSuffix(line, "\n") {
			return &refusedError{fmt.Sprintf("the witness answered 200 with something else than signature lines: %q", clip(body))}
		}
		if name, _, _ := strings.Cut(strings.TrimPrefix(line, "— "), " "); name == c.verifier.Name() {
			mine = append(mine, line...)
		}
	}
	cosigned := append(append([]byte(nil), cp.Note...), mine...)
	n, err := note.Open(cosigned, note.VerifierList(c.verifier))
	if err != nil || len(n.Sigs) == 0 {
		return &refusedError{fmt.Sprintf("the witness's answer holds no valid cosignature by %s+%08x: %v", c.verifier.Name(), c.verifier.KeyHash(), err)}
	}
	c.known.Store(cp.Size)
	c.cosigned.Add(1)
	c.logger.Debug("audit checkpoint cosigned by the witness", "size", cp.Size)
	if c.dir != "" {
		if err := audit.WriteFileDurably(c.dir, WitnessedName(cp.Size, c.verifier.KeyHash()), cosigned); err != nil {
			// The witness holds the cosignature (verify can ask it); the copy is a convenience.
			c.logger.Warn("cosigned audit checkpoint not written to the checkpoint directory", "size", cp.Size, "err", err)
		}
	}
	return nil
}

// clip shortens a body for a log line.
func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// WitnessedName is the file of the checkpoint directory holding the checkpoint of size records
// cosigned by the witness with key id keyHash.
func WitnessedName(size int64, keyHash uint32) string {
	return fmt.Sprintf("witnessed-%020d-%08x", size, keyHash)
}
