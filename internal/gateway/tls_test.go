package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key: a server certificate for 127.0.0.1, or a client
// certificate with a URI SAN.
func (ca *testCA) issue(t *testing.T, serial int64, client bool, uri string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSListenerWithClientCertificates: TLS 1.2+, client certificates mapped to principals
// (listed accepted, unlisted and absent refused, a foreign CA's refused at the handshake), and a
// renewed server certificate served without a restart.
func TestTLSListenerWithClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	certFile, keyFile, caFile := filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key"), filepath.Join(dir, "clients.pem")
	c, k := serverCA.issue(t, 100, false, "")
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, clientCA.pem)
	tg := newTestGateway(t, fmt.Sprintf(`tls:
  cert_file: %q
  key_file: %q
  client_ca_file: %q
  client_roles:
    "spiffe://bank/agent-7": [MarketAnalystAI]
  require_listed: true
`, certFile, keyFile, caFile))
	tc, err := wiring.TLSConfig(tg.cfg.TLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tg.g.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	endpoint := "https://" + ln.Addr().String() + "/mcp"

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	client := func(ca *testCA, uri string, maxVersion uint16) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
		if ca != nil {
			cp, kp := ca.issue(t, 7, true, uri)
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			// Always present it, even when the server's list of acceptable CAs does not name its
			// issuer (Go clients would otherwise stay silent), so the server's check is what is tested.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	}
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	do := func(c *http.Client) (int, *tls.ConnectionState, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); got != hsts {
			t.Errorf("Strict-Transport-Security = %q over TLS (status %d), want %q", got, resp.StatusCode, hsts)
		}
		return resp.StatusCode, resp.TLS, nil
	}

	if st, _, err := do(client(clientCA, "spiffe://bank/agent-7", 0)); err != nil || st != http.StatusOK {
		t.Errorf("listed client certificate: status %d, err %v; want 200", st, err)
	}
	if st, _, err := do(client(clientCA, "spiffe://bank/intruder", 0)); err != nil || st != http.StatusUnauthorized {
		t.Errorf("unlisted client certificate: status %d, err %v; want 401", st, err)
	}
	if st, _, err := do(client(nil, "", 0)); err != nil || st != http.StatusUnauthorized {
		t.Errorf("no client certificate: status %d, err %v; want 401", st, err)
	}
	if _, _, err := do(client(otherCA, "spiffe://bank/agent-7", 0)); err == nil {
		t.Error("a certificate from another CA was accepted")
	}
	if _, _, err := do(client(clientCA, "spiffe://bank/agent-7", tls.VersionTLS11)); err == nil {
		t.Error("a TLS 1.1 client was accepted")
	}

	// Renew the server certificate in place: the next connection gets the new one.
	c, k = serverCA.issue(t, 200, false, "")
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, future, future)
	os.Chtimes(keyFile, future, future)
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond) // the listener looks at the files again once a second at most
		_, state, err := do(client(clientCA, "spiffe://bank/agent-7", 0))
		if err == nil && state.PeerCertificates[0].SerialNumber.Int64() == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate was not served (err %v)", err)
		}
	}
}
