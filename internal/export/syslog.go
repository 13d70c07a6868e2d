package export

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Facilities by name (RFC 5424 section 6.2.1).
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// ParseFacility returns the code of a syslog facility name ("local0", "auth", …).
func ParseFacility(name string) (int, error) {
	f, ok := facilities[strings.ToLower(name)]
	if !ok {
		return 0, fmt.Errorf("unknown syslog facility %q: want kern, user, daemon, auth, authpriv, security, local0 … local7 or another RFC 5424 name", name)
	}
	return f, nil
}

// Severities (RFC 5424 section 6.2.1).
const (
	severityAlert   = 1
	severityWarning = 4
	severityInfo    = 6
)

// Defaults for SyslogOptions.
const (
	DefaultFacility = 13 // security (log audit)
	DefaultAppName  = "mcpguard"
)

// SyslogOptions configures a syslog sink.
type SyslogOptions struct {
	Options
	// TLS, when set, connects with TLS (RFC 5425); otherwise plain TCP.
	TLS *tls.Config
	// Facility is the facility code (default DefaultFacility; see ParseFacility).
	Facility *int
	// AppName is the APP-NAME field (default DefaultAppName); Hostname the HOSTNAME field
	// (default os.Hostname).
	AppName  string
	Hostname string
	// Dial opens connections (default a net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewSyslog returns a sink that sends every record to a syslog receiver at addr (host:port)
// as one RFC 5424 message over TCP or TLS with octet-counting framing (RFC 6587). The message
// is the record's canonical JSON; MSGID is its kind. Policy denials, authentication failures,
// rate limits and quarantines have severity warning, other records informational.
func NewSyslog(name, addr string, opts *SyslogOptions) (*Sink, error) {
	o := SyslogOptions{}
	if opts != nil {
		o = *opts
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("syslog address %q: %w", addr, err)
	}
	d := &syslogDest{addr: addr, tls: o.TLS, facility: DefaultFacility, app: o.AppName, host: o.Hostname, dial: o.Dial, pid: strconv.Itoa(os.Getpid())}
	if o.Facility != nil {
		if *o.Facility < 0 || *o.Facility > 23 {
			return nil, fmt.Errorf("syslog facility %d: want 0 to 23", *o.Facility)
		}
		d.facility = *o.Facility
	}
	if d.app == "" {
		d.app = DefaultAppName
	}
	if d.host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "-"
		}
		d.host = h
	}
	for _, f := range []struct {
		what, v string
		max     int
	}{{"app name", d.app, 48}, {"hostname", d.host, 255}} {
		if !printUSASCII(f.v) || len(f.v) > f.max {
			return nil, fmt.Errorf("syslog %s %q: want 1 to %d printable ASCII characters without spaces", f.what, f.v, f.max)
		}
	}
	if d.dial == nil {
		var nd net.Dialer
		d.dial = nd.DialContext
	}
	return newSink(name, d, &o.Options), nil
}

// printUSASCII reports whether s is PRINTUSASCII (RFC 5424: %d33-126), not empty.
func printUSASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

type syslogDest struct {
	addr     string
	tls      *tls.Config
	facility int
	app      string
	host     string
	pid      string
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)

	// Owned by the sink's goroutine.
	conn net.Conn
	buf  []byte
	msg  []byte
}

func (d *syslogDest) connect(ctx context.Context) error {
	c, err := d.dial(ctx, "tcp", d.addr)
	if err != nil {
		return fmt.Errorf("connect to syslog %s: %w", d.addr, err)
	}
	if d.tls != nil {
		cfg := d.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(d.addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return fmt.Errorf("connect to syslog %s: TLS: %w", d.addr, err)
		}
		c = tc
	}
	d.conn = c
	return nil
}

func (d *syslogDest) write(ctx context.Context, batch []audit.Durable) error {
	if d.conn == nil {
		if err := d.connect(ctx); err != nil {
			return err
		}
	}
	d.buf = d.buf[:0]
	for _, r := range batch {
		d.msg = d.format(d.msg[:0], r)
		d.buf = strconv.AppendInt(d.buf, int64(len(d.msg)), 10)
		d.buf = append(d.buf, ' ')
		d.buf = append(d.buf, d.msg...)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = d.conn.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = d.conn.Close() })
	_, err := d.conn.Write(d.buf)
	if !stop() || err != nil {
		// A partial frame would corrupt the stream: start a new connection for the retry.
		d.conn.Close()
		d.conn = nil
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("send to syslog %s: %w", d.addr, err)
	}
	return nil
}

// format appends one RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG.
func (d *syslogDest) format(dst []byte, r audit.Durable) []byte {
	sev := severityInfo
	switch r.Kind {
	case audit.KindPolicyDenial, audit.KindAuthFailure, audit.KindRateLimit, audit.KindQuarantine:
		sev = severityWarning
	case audit.KindBlock, audit.KindSuspend, audit.KindAlert:
		sev = severityAlert
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(d.facility*8+sev), 10)
	dst = append(dst, ">1 "...)
	dst = r.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, ' ')
	dst = append(dst, d.host...)
	dst = append(dst, ' ')
	dst = append(dst, d.app...)
	dst = append(dst, ' ')
	dst = append(dst, d.pid...)
	dst = append(dst, ' ')
	if k := string(r.Kind); printUSASCII(k) && len(k) <= 32 {
		dst = append(dst, k...)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, " - "...)
	return append(dst, r.Data...)
}

func (d *syslogDest) close() error {
	if d.conn == nil {
		return nil
	}
	err := d.conn.Close()
	d.conn = nil
	return err
}
