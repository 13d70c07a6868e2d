package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// WebhookOptions configures a webhook sink.
type WebhookOptions struct {
	Options
	// BearerToken, when set, is sent as "Authorization: Bearer …".
	BearerToken string
	// Client sends the requests (default a client with no redirects and WriteTimeout as its
	// timeout).
	Client *http.Client
}

// NewWebhook returns a sink that POSTs records in batches to rawURL as a JSON array of their
// canonical encodings. The URL must be https, or http to a loopback address. A 2xx answer
// delivers the batch; 408, 429 and 5xx are retried; any other status drops the batch (counted).
func NewWebhook(name, rawURL string, opts *WebhookOptions) (*Sink, error) {
	o := WebhookOptions{}
	if opts != nil {
		o = *opts
	}
	u, err := CheckWebhookURL(rawURL)
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(o.BearerToken, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("webhook %s: the bearer token contains a control character", name)
	}
	c := o.Client
	if c == nil {
		c = &http.Client{
			Timeout:       o.withDefaults().WriteTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return newSink(name, &webhookDest{url: u.String(), token: o.BearerToken, client: c}, &o.Options), nil
}

// CheckWebhookURL parses a webhook URL and refuses plain http except to loopback, where
// audit records cannot be read on the wire.
func CheckWebhookURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("webhook URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("webhook URL %q: want https://host[:port]/path without credentials or fragment", rawURL)
	}
	// A zone (https://[fe80::1%eth0]/) names a network interface of this machine, never a SIEM;
	// and a URL whose own form does not parse again would be read differently by the sender.
	if strings.Contains(u.Host, "%") {
		return nil, fmt.Errorf("webhook URL %q: an IPv6 zone is not allowed in the host", rawURL)
	}
	if again, err := url.Parse(u.String()); err != nil || again.String() != u.String() {
		return nil, fmt.Errorf("webhook URL %q: it does not read the same once written out; write it in plain form", rawURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("webhook URL %q: plain http is allowed only to loopback (127.0.0.1, ::1, localhost); use https", rawURL)
		}
	default:
		return nil, fmt.Errorf("webhook URL %q: the scheme must be https (or http to loopback)", rawURL)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type webhookDest struct {
	url    string
	token  string
	client *http.Client
	buf    bytes.Buffer
}

func (d *webhookDest) write(ctx context.Context, batch []audit.Durable) error {
	d.buf.Reset()
	d.buf.WriteByte('[')
	for i, r := range batch {
		if i > 0 {
			d.buf.WriteByte(',')
		}
		d.buf.Write(r.Data)
	}
	d.buf.WriteByte(']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("post to webhook: %s", resp.Status)
	default:
		return fmt.Errorf("post to webhook: %s: %w", resp.Status, errPermanent)
	}
}

func (d *webhookDest) close() error {
	d.client.CloseIdleConnections()
	return nil
}
