package config

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOAuth(t *testing.T) {
	cfg := parseTestdata(t, "valid_oauth.yaml")
	resolved := func(text string) Secret { return resolvedFake(t, text) }
	wantOIDC := &AdminOIDC{
		Issuer:        "https://login.example.com/realms/ops",
		ClientID:      "mcpguard-admin",
		ClientSecret:  resolved("env:CLIENT_SECRET"),
		RedirectURL:   "https://admin.example.com/v1/login/oidc/callback",
		Scopes:        []string{"openid", "profile", "email"},
		OperatorClaim: "email",
		RequiredAMR:   []string{"mfa"},
	}
	if diff := cmp.Diff(wantOIDC, cfg.Admin.OIDC); diff != "" {
		t.Errorf("admin.oidc (-want +got):\n%s", diff)
	}
	wantCC := []*ClientCredentials{
		{ClientID: "gateway", ClientSecret: resolved("env:CLIENT_SECRET"), AuthMethod: ClientSecretBasic},
		{
			ClientID: "gateway", ClientSecret: resolved("file:/run/secrets/token"),
			Issuer: "https://login.example.com/realms/svc", Scopes: []string{"billing.read", "billing.write"},
			Resource: "https://billing.example.com", AuthMethod: ClientSecretPost,
		},
		{ClientID: "gateway", ClientSecret: resolved("env:CLIENT_SECRET"), TokenURL: "http://127.0.0.1:9000/token", AuthMethod: ClientSecretBasic},
	}
	gotCC := []*ClientCredentials{cfg.Upstreams[0].HTTP.ClientCredentials, cfg.Upstreams[1].HTTP.ClientCredentials, cfg.Upstreams[2].SSE.ClientCredentials}
	if diff := cmp.Diff(wantCC, gotCC); diff != "" {
		t.Errorf("client_credentials (-want +got):\n%s", diff)
	}
	if got := cfg.Upstreams[0].HTTP.ClientCredentials.ClientSecret.Reveal(); got != "cl1ent-s3cret" {
		t.Errorf("client secret resolved to %q, want the environment's value", got)
	}
	key, err := cfg.IdentityKey()
	if err != nil || !bytes.Equal(key, bytes.Repeat([]byte("k"), 32)) {
		t.Errorf("IdentityKey() = %q, %v; want 32 × k", key, err)
	}
}

func TestOIDCDefaults(t *testing.T) {
	cfg, err := parseFake([]byte(`
api_keys_database: ids.db
admin:
  listen: 127.0.0.1:8081
  oidc: {issuer: "http://localhost:9000/realms/x", client_id: admin, redirect_url: "http://127.0.0.1:8081/v1/login/oidc/callback"}
upstreams: [{name: a, stdio: {command: a}}]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Admin.OIDC
	if !cmp.Equal(o.Scopes, []string{"openid"}) || o.OperatorClaim != "preferred_username" || !o.ClientSecret.IsZero() {
		t.Errorf("scopes, operator_claim, secret = %q, %q, %v; want [openid], preferred_username and a public client", o.Scopes, o.OperatorClaim, o.ClientSecret.IsZero())
	}
}

func TestIdentityKey(t *testing.T) {
	want := bytes.Repeat([]byte("k"), 32)
	tests := []struct {
		name    string
		text    string
		wantErr string // "" for success
	}{
		{"base64", "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", ""},
		{"base64 without padding", "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s", ""},
		{"hex", strings.Repeat("6b", 32), ""},
		{"upper-case hex", strings.Repeat("6B", 32), ""},
		{"surrounding space", "  a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=\n", ""},
		{"16 bytes", "c3Nzc3Nzc3Nzc3Nzc3Nzcw==", "decodes to 16 bytes; want 32"},
		{"64 bytes of base64", strings.Repeat("a2tr", 22)[:86] + "==", "decodes to 64 bytes; want 32"},
		{"neither", "not a key!", "not base64 or hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MCPGUARD_TEST_IDENTITY_KEY", tt.text)
			c := &Config{IdentityEncryptionKey: NewSecret("env:MCPGUARD_TEST_IDENTITY_KEY")}
			if err := c.IdentityEncryptionKey.Resolve(os.LookupEnv, readSecretFile); err != nil {
				t.Fatal(err)
			}
			got, err := c.IdentityKey()
			switch {
			case tt.wantErr == "" && (err != nil || !bytes.Equal(got, want)):
				t.Errorf("IdentityKey() = %q, %v; want 32 × k", got, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("IdentityKey() error = %v; want one containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), strings.TrimSpace(tt.text)):
				t.Errorf("error %q reveals the key", err)
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		if got, err := (&Config{}).IdentityKey(); got != nil || err != nil {
			t.Errorf("IdentityKey() = %q, %v; want nil, nil", got, err)
		}
	})
	t.Run("unresolved reference is an error, not a missing key", func(t *testing.T) {
		c := &Config{IdentityEncryptionKey: NewSecret("env:X")}
		if got, err := c.IdentityKey(); got != nil || err == nil {
			t.Errorf("IdentityKey() = %q, %v; want an error", got, err)
		}
	})
}

func TestParsePrivateKeyJWT(t *testing.T) {
	cfg := parseTestdata(t, "valid_oauth.yaml")
	resolved := func(text string) Secret { return resolvedFake(t, text) }
	want := []*ClientCredentials{
		{
			ClientID: "gateway", AuthMethod: PrivateKeyJWT, PrivateKey: resolved("file:/fake/keys/p256.pem"), KeyID: "gateway-2026",
			Issuer: "https://login.example.com/realms/svc", AssertionAudience: AudienceIssuer,
		},
		{
			ClientID: "gateway", AuthMethod: PrivateKeyJWT, PrivateKey: resolved("file:/fake/keys/rsa2048.pem"), Algorithm: "PS256",
			TokenURL: "https://login.example.com/oauth2/v2.0/token", Certificate: resolved("file:/fake/keys/rsa2048_cert.pem"),
		},
		{ClientID: "gateway", AuthMethod: PrivateKeyJWT, PrivateKey: resolved("file:/fake/keys/ed25519.pem"), AssertionAudience: "https://login.example.com"},
		{ClientID: "gateway", AuthMethod: PrivateKeyJWT, PrivateKey: resolved("file:/fake/keys/p256_sec1.pem")},
	}
	got := []*ClientCredentials{cfg.Upstreams[3].HTTP.ClientCredentials, cfg.Upstreams[4].HTTP.ClientCredentials, cfg.Upstreams[5].SSE.ClientCredentials, cfg.Upstreams[6].HTTP.ClientCredentials}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("client_credentials (-want +got):\n%s", diff)
	}
	wantTypes := []string{"*ecdsa.PrivateKey", "*rsa.PrivateKey", "ed25519.PrivateKey", "*ecdsa.PrivateKey"}
	for i, cc := range got {
		key, err := cc.AssertionKey()
		if err != nil || fmt.Sprintf("%T", key) != wantTypes[i] {
			t.Errorf("upstream %d: AssertionKey() = %T, %v; want a %s", i+3, key, err, wantTypes[i])
		}
	}
	if der, err := got[1].AssertionCertificate(); err != nil || len(der) == 0 {
		t.Errorf("AssertionCertificate() = %d bytes, %v; want the certificate", len(der), err)
	} else if cert, err := x509.ParseCertificate(der); err != nil || cert.Subject.CommonName != "mcpguard-test-client" {
		t.Errorf("AssertionCertificate() does not hold the test certificate: %v", err)
	}
	if der, err := got[0].AssertionCertificate(); der != nil || err != nil {
		t.Errorf("AssertionCertificate() without a certificate = %d bytes, %v; want nil, nil", len(der), err)
	}
	if key, err := cfg.Upstreams[0].HTTP.ClientCredentials.AssertionKey(); key != nil || err != nil {
		t.Errorf("AssertionKey() without private_key = %v, %v; want nil, nil", key, err)
	}
	unresolved := &ClientCredentials{PrivateKey: NewSecret("file:/k.pem")}
	if _, err := unresolved.AssertionKey(); err == nil {
		t.Error("AssertionKey() of an unresolved reference succeeded; want an error")
	}
}

func TestParsePrivateKey(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile("testdata/keys/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	tests := []struct {
		name    string
		text    string
		wantErr string // "" for success
	}{
		{"PKCS#8 EC", read("p256.pem"), ""},
		{"PKCS#1 RSA", read("rsa2048.pem"), ""},
		{"SEC 1 after EC PARAMETERS", read("p256_sec1.pem"), ""},
		{"text around the block", "key for the gateway\n" + read("ed25519.pem") + "\nend\n", ""},
		{"two keys", read("p256.pem") + read("p384.pem"), "more than one private key"},
		{"certificate-like block only", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", `only PEM blocks of type "CERTIFICATE"`},
		{"legacy encrypted", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n", "encrypted"},
		{"garbage in a key block", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "does not parse"},
		{"base64 without armour", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", "not PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := parsePrivateKey([]byte(tt.text))
			switch {
			case tt.wantErr == "" && (err != nil || key == nil):
				t.Errorf("= %v, %v; want a key", key, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}
