package export

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// FuzzCheckWebhookURL checks that whatever URL is accepted sends nothing in clear off the
// machine and carries no credentials.
func FuzzCheckWebhookURL(f *testing.F) {
	for _, s := range []string{
		"https://siem.example.com/ingest", "http://127.0.0.1:8080/x", "http://[::1]/", "http://localhost./x",
		"http://127.0.0.1@evil.example/", "https://user:pw@h/", "http://0x7f.1/", "HTTP://LOCALHOST/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CheckWebhookURL(raw)
		if err != nil {
			return
		}
		again, perr := url.Parse(u.String())
		if perr != nil {
			t.Fatalf("accepted %q, whose form %q does not parse: %v", raw, u, perr)
		}
		if again.User != nil {
			t.Fatalf("accepted %q with credentials", raw)
		}
		switch again.Scheme {
		case "https":
		case "http":
			if !isLoopback(again.Hostname()) {
				t.Fatalf("accepted plain http to %q (%q)", again.Hostname(), raw)
			}
		default:
			t.Fatalf("accepted scheme %q (%q)", again.Scheme, raw)
		}
	})
}

// FuzzSyslogFrame sends arbitrary records through the syslog framing and reads them back as an
// RFC 6587 octet-counting receiver would: every frame must be whole, and its message must be
// the RFC 5424 header followed by the record's bytes unchanged.
func FuzzSyslogFrame(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":0}`), "call", int64(0))
	f.Add([]byte("a 12 <13>1 fake frame\n"), "policy_denial", int64(1700000000123456789))
	f.Add([]byte{}, "kind with spaces", int64(-1))
	f.Add([]byte("\xff\x00"), "", int64(1<<62))
	f.Fuzz(func(t *testing.T, data []byte, kind string, nanos int64) {
		d := &syslogDest{addr: "x:1", facility: 16, app: "mcpguard", host: "gw", pid: "7"}
		client, server := net.Pipe()
		d.dial = func(context.Context, string, string) (net.Conn, error) { return client, nil }
		recs := []audit.Durable{
			{Seq: 1, Time: time.Unix(0, nanos), Kind: audit.Kind(kind), Data: data},
			{Seq: 2, Time: time.Unix(0, 0), Kind: audit.KindOutcome, Data: []byte(`{"v":1}`)},
		}
		got := make(chan []byte, 1)
		go func() {
			var b bytes.Buffer
			_, _ = b.ReadFrom(server)
			got <- b.Bytes()
		}()
		if err := d.write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		d.close()
		stream := <-got
		for i, r := range recs {
			sp := bytes.IndexByte(stream, ' ')
			if sp <= 0 {
				t.Fatalf("frame %d: no length prefix in %q", i, stream)
			}
			n, err := strconv.Atoi(string(stream[:sp]))
			if err != nil || n < 0 || n > len(stream)-sp-1 {
				t.Fatalf("frame %d: bad length %q for %d bytes left", i, stream[:sp], len(stream)-sp-1)
			}
			msg := stream[sp+1 : sp+1+n]
			stream = stream[sp+1+n:]
			if !bytes.HasSuffix(msg, r.Data) {
				t.Fatalf("frame %d does not end with the record", i)
			}
			header := string(msg[:len(msg)-len(r.Data)])
			fields := strings.Split(header, " ")
			// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA, then the message.
			if len(fields) != 8 || fields[7] != "" || fields[6] != "-" || !strings.HasPrefix(fields[0], "<") {
				t.Fatalf("frame %d header %q is not RFC 5424", i, header)
			}
			for _, f := range fields[1:7] {
				if !printUSASCII(f) {
					t.Fatalf("frame %d header field %q is not PRINTUSASCII", i, f)
				}
			}
		}
		if len(stream) != 0 {
			t.Fatalf("%d bytes after the last frame", len(stream))
		}
	})
}
