package export_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/export"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// TestLogWithDownSink runs a real audit log whose only sink hangs: every append still
// succeeds (the durable path does not wait for export), the sink holds at most its buffer, and
// what it could not hold is counted. A second, healthy sink on the same log gets everything.
func TestLogWithDownSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "audit.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	skey, _, err := audit.GenerateKey("export-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	o := fastOptions()
	o.Buffer, o.MaxBatch, o.WriteTimeout = 20, 5, time.Minute
	down, err := export.NewWebhook("down", srv.URL, &export.WebhookOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	file, err := export.NewFile("file", path, &export.FileOptions{Options: fastOptions()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, &audit.Options{
		Signer: signer, CheckpointDir: filepath.Join(dir, "cp"), Sinks: []audit.Sink{quickClose{down}, file},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := l.Append(ctx, &audit.Record{Kind: audit.KindToolCall, Tool: "t", Arguments: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		cancel()
		if err != nil {
			t.Fatalf("append %d with a hanging sink: %v", i, err)
		}
	}
	if d := down.Dropped(); d < n-30 {
		t.Errorf("the hanging sink dropped %d of %d, want all but its buffer and one batch", d, n)
	}
	if err := l.Close(); err != nil { // closes both sinks
		t.Fatal(err)
	}
	if got := down.Dropped() + down.Delivered(); got != n {
		t.Errorf("hanging sink: dropped + delivered = %d, want %d", got, n)
	}
	lines := readLines(t, path)
	if len(lines) != n {
		t.Fatalf("the healthy sink wrote %d lines, want %d", len(lines), n)
	}
	for i, line := range lines {
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if r.Seq != int64(i) {
			t.Fatalf("line %d holds seq %d", i, r.Seq)
		}
	}
}

// quickClose gives up on a sink's buffer at once when the log closes it.
type quickClose struct{ *export.Sink }

func (q quickClose) Close(context.Context) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	return q.Sink.Close(ctx)
}

// TestSyslogTLS sends records over TLS to an in-test receiver that trusts only its own
// certificate, and checks that an untrusted receiver gets nothing.
func TestSyslogTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	rcv := &syslogReceiver{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rcv.serve(c)
		}
	}()
	s, err := export.NewSyslog("siem", ln.Addr().String(), &export.SyslogOptions{
		Options: fastOptions(), Hostname: "gw1", TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 40)
	offerAll(s, recs)
	waitDelivered(t, s, 40)
	closeSink(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for len(rcv.messages()) < 40 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := len(rcv.messages()); got != 40 {
		t.Fatalf("TLS receiver got %d messages, want 40", got)
	}

	untrusted, err := export.NewSyslog("siem", ln.Addr().String(), &export.SyslogOptions{
		Options: fastOptions(), Hostname: "gw1", TLS: &tls.Config{MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	untrusted.Offer(recs[:1])
	for untrusted.Failures() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_ = untrusted.Close(ctx)
	if untrusted.Delivered() != 0 || untrusted.Dropped() != 1 {
		t.Errorf("with an untrusted certificate: delivered %d dropped %d, want 0 and 1", untrusted.Delivered(), untrusted.Dropped())
	}
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
