package authn

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/go-json-experiment/json"

	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

const maxDiscoveryBytes = 256 << 10

// discoveryURLs lists where an issuer's metadata may live (oauthclient.AuthServerMetadataURLs).
func discoveryURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", issuer, err)
	}
	return oauthclient.AuthServerMetadataURLs(u), nil
}

// issuerMetadata is the part of an authorization server's metadata the gateway reads.
type issuerMetadata struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

// discoverJWKS reads the issuer's metadata and returns its jwks_uri.
func discoverJWKS(ctx context.Context, get func(ctx context.Context, u string, limit int64) ([]byte, error), issuer string) (string, error) {
	meta, err := discoverIssuer(ctx, get, issuer)
	if err != nil {
		return "", err
	}
	return meta.JWKSURI, nil
}

// discoverIssuer reads the issuer's metadata, which must name a jwks_uri. The document must name
// the same issuer, exactly (RFC 8414 section 3.3, OpenID Connect Discovery section 4.3): this
// stops one authorization server from passing itself off as another.
func discoverIssuer(ctx context.Context, get func(ctx context.Context, u string, limit int64) ([]byte, error), issuer string) (issuerMetadata, error) {
	urls, err := discoveryURLs(issuer)
	if err != nil {
		return issuerMetadata{}, err
	}
	var errs []error
	for _, u := range urls {
		data, err := get(ctx, u, maxDiscoveryBytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var meta issuerMetadata
		if err := json.Unmarshal(data, &meta); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		if meta.Issuer != issuer {
			return issuerMetadata{}, fmt.Errorf("%s names issuer %q, not the configured %q", u, truncate(meta.Issuer), issuer)
		}
		if meta.JWKSURI == "" {
			return issuerMetadata{}, fmt.Errorf("%s has no jwks_uri", u)
		}
		if err := oauthclient.CheckEndpoint(meta.JWKSURI); err != nil {
			return issuerMetadata{}, fmt.Errorf("%s: jwks_uri: %w", u, err)
		}
		return meta, nil
	}
	return issuerMetadata{}, fmt.Errorf("discover the metadata of %s: %w", issuer, errors.Join(errs...))
}
