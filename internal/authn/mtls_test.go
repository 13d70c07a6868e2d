package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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

// issue makes a client (or, with server, a server) certificate.
func (ca *testCA) issue(t *testing.T, cn string, mut func(c *x509.Certificate)) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	if mut != nil {
		mut(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestCertificateMapperFields(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "ca")
	spiffe, _ := url.Parse("spiffe://example.org/agent/billing")
	tests := []struct {
		name string
		opts CertificateMapperOptions
		mut  func(c *x509.Certificate)
		want string
		ok   bool
	}{
		{"URI SAN first", CertificateMapperOptions{}, func(c *x509.Certificate) { c.URIs = []*url.URL{spiffe}; c.DNSNames = []string{"billing.example.org"} }, "spiffe://example.org/agent/billing", true},
		{"DNS SAN lower-cased", CertificateMapperOptions{}, func(c *x509.Certificate) { c.DNSNames = []string{"Billing.Example.org"} }, "billing.example.org", true},
		{"CN last", CertificateMapperOptions{}, nil, "agent-cn", true},
		{"CN only, when configured", CertificateMapperOptions{Fields: []CertificateField{FieldCN}}, func(c *x509.Certificate) { c.DNSNames = []string{"x.example.org"} }, "agent-cn", true},
		{"not listed", CertificateMapperOptions{RequireListed: true, Roles: map[string][]string{"other": nil}}, nil, "", false},
		{"no field", CertificateMapperOptions{Fields: []CertificateField{FieldEmailSAN}}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewCertificateMapper(&tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := ca.issue(t, "agent-cn", tt.mut)
			p, ok, err := m.Principal(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c.Leaf, ca.cert}}})
			if !ok {
				t.Fatal("a verified certificate was not considered")
			}
			if (err == nil) != tt.ok || (err == nil && p.Subject != tt.want) {
				t.Errorf("got %+v, %v; want subject %q ok=%v", p, err, tt.want, tt.ok)
			}
		})
	}
	m, _ := NewCertificateMapper(nil)
	c := ca.issue(t, "agent-cn", nil)
	if _, ok, _ := m.Principal(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}); ok {
		t.Error("an unverified peer certificate was considered")
	}
	if _, err := NewCertificateMapper(&CertificateMapperOptions{Fields: []CertificateField{"serial"}}); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func TestMiddlewareAuthenticatesClientCertificates(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "agents CA"), newTestCA(t, "someone else")
	pool, err := ParseCABundle(ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewCertificateMapper(&CertificateMapperOptions{Roles: map[string][]string{"billing-agent": {"finance"}}})
	a, err := NewAuthenticator("https://127.0.0.1/mcp", nil, &AuthenticatorOptions{Certificates: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		io.WriteString(w, p.Subject+" "+strings.Join(p.Roles, ","))
	})))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	client := func(certs ...tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if len(certs) > 0 {
			// Send the certificate whatever CAs the server names, as an attacker would.
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
		}
		return &http.Client{Transport: tr}
	}
	get := func(c *http.Client) (int, string, error) {
		resp, err := c.Get(srv.URL + "/mcp")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	code, body, err := get(client(ca.issue(t, "billing-agent", nil)))
	if diff := cmp.Diff([]any{200, "billing-agent finance", nil}, []any{code, body, err}); diff != "" {
		t.Errorf("certificate from the configured CA (-want +got):\n%s", diff)
	}
	if code, _, _ := get(client()); code != 401 {
		t.Errorf("no certificate: %d, want 401", code)
	}
	if code, body, err := get(client(other.issue(t, "billing-agent", nil))); err == nil || code == 200 {
		t.Errorf("a certificate from another CA got through the TLS handshake: %d %q", code, body)
	}
}

func TestParseCABundle(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "ca")
	leaf := ca.issue(t, "leaf", nil)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	for _, tt := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"one CA", ca.pem, true},
		{"a leaf", leafPEM, false},
		{"a private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), false},
		{"empty", nil, false},
	} {
		if _, err := ParseCABundle(tt.in); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
