package authn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CertificateField names where a client certificate's identity is read from.
type CertificateField string

// Certificate identity fields, in the default order of preference.
const (
	FieldURISAN   CertificateField = "uri"   // a URI subject alternative name (e.g. a SPIFFE id)
	FieldDNSSAN   CertificateField = "dns"   // a DNS subject alternative name
	FieldEmailSAN CertificateField = "email" // an e-mail subject alternative name
	FieldCN       CertificateField = "cn"    // the subject common name
)

// CertificateMapperOptions configures a CertificateMapper.
type CertificateMapperOptions struct {
	// Fields are tried in order; the first present gives the principal's name (default: uri,
	// dns, email, cn).
	Fields []CertificateField
	// Roles maps a principal name to its roles. With RequireListed, names not listed are
	// refused.
	Roles map[string][]string
	// RequireListed refuses certificates whose name has no entry in Roles.
	RequireListed bool
}

// CertificateMapper turns a client certificate that the TLS listener already verified against
// the configured CA bundle into a Principal. It never verifies chains itself: it reads only
// tls.ConnectionState.VerifiedChains, so an unverified certificate can never authenticate.
type CertificateMapper struct {
	fields        []CertificateField
	roles         map[string][]string
	requireListed bool
}

// NewCertificateMapper returns a mapper.
func NewCertificateMapper(opts *CertificateMapperOptions) (*CertificateMapper, error) {
	if opts == nil {
		opts = &CertificateMapperOptions{}
	}
	m := &CertificateMapper{fields: opts.Fields, roles: opts.Roles, requireListed: opts.RequireListed}
	if len(m.fields) == 0 {
		m.fields = []CertificateField{FieldURISAN, FieldDNSSAN, FieldEmailSAN, FieldCN}
	}
	for _, f := range m.fields {
		switch f {
		case FieldURISAN, FieldDNSSAN, FieldEmailSAN, FieldCN:
		default:
			return nil, fmt.Errorf("certificate field %q: use uri, dns, email or cn", f)
		}
	}
	return m, nil
}

// Principal maps the connection's verified client certificate. It reports ok=false when the
// connection has no verified client certificate (the request may authenticate otherwise).
func (m *CertificateMapper) Principal(state *tls.ConnectionState) (p *Principal, ok bool, err error) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	cert := state.VerifiedChains[0][0]
	name := m.name(cert)
	if name == "" {
		return nil, true, rejectf(ReasonClaims, "client certificate %q has none of the fields %v", truncate(cert.Subject.String()), m.fields)
	}
	roles, listed := m.roles[name]
	if m.requireListed && !listed {
		return nil, true, rejectf(ReasonUnknownKey, "client certificate for %q is not listed", truncate(name))
	}
	return &Principal{
		Method:  MethodCertificate,
		Subject: name,
		KeyID:   fmt.Sprintf("%x", cert.SerialNumber),
		Issuer:  cert.Issuer.String(),
		Roles:   slices.Clone(roles),
		Expires: cert.NotAfter,
	}, true, nil
}

func (m *CertificateMapper) name(cert *x509.Certificate) string {
	for _, f := range m.fields {
		switch f {
		case FieldURISAN:
			if len(cert.URIs) > 0 {
				return cert.URIs[0].String()
			}
		case FieldDNSSAN:
			if len(cert.DNSNames) > 0 {
				return strings.ToLower(cert.DNSNames[0])
			}
		case FieldEmailSAN:
			if len(cert.EmailAddresses) > 0 {
				return cert.EmailAddresses[0]
			}
		case FieldCN:
			if cert.Subject.CommonName != "" {
				return cert.Subject.CommonName
			}
		}
	}
	return ""
}

// ParseCABundle reads PEM CA certificates for verifying client certificates. Anything in the
// bundle that is not a CA certificate is an error, so a misplaced leaf or key is noticed.
func ParseCABundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("CA bundle: unexpected PEM block %q", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle certificate %d: %w", n+1, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("CA bundle certificate %d (%s) is not a CA", n+1, truncate(cert.Subject.String()))
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("CA bundle has no certificates")
	}
	return pool, nil
}
