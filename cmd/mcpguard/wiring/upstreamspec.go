package wiring

import (
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/oauthclient"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// upstreamSpec turns one upstream's configuration into what package upstream needs to reach it:
// secrets revealed, static headers and the bearer token as one header set, the client
// credentials' private key and certificate decoded.
func upstreamSpec(uc *config.Upstream) (upstream.Spec, error) {
	spec := upstream.Spec{Name: uc.Name, Prefix: uc.Prefix, Timeout: uc.Timeout,
		Bulkhead: upstream.BulkheadSpec{Concurrent: uc.Bulkhead.Concurrent, Queue: uc.Bulkhead.Queue, QueueWait: uc.Bulkhead.QueueWait}}
	b := uc.Breaker
	if b == (config.Breaker{}) {
		b = config.DefaultBreaker()
	}
	if !b.Disabled {
		spec.Breaker = upstream.BreakerSpec{Failures: b.Failures, FailureRatio: b.FailureRatio, MinCalls: b.MinCalls,
			Window: b.Window, CoolDown: b.CoolDown, HalfOpenCalls: b.HalfOpenCalls}
	}
	header := func(headers map[string]config.Secret, bearer config.Secret) http.Header {
		h := http.Header{}
		for k, v := range headers {
			h.Set(k, v.Reveal())
		}
		if !bearer.IsZero() {
			h.Set("Authorization", "Bearer "+bearer.Reveal())
		}
		return h
	}
	credentials := func(cc *config.ClientCredentials) (*oauthclient.Config, error) {
		if cc == nil {
			return nil, nil
		}
		key, err := cc.AssertionKey()
		if err != nil {
			return nil, err
		}
		cert, err := cc.AssertionCertificate()
		if err != nil {
			return nil, err
		}
		return &oauthclient.Config{
			ClientID:          cc.ClientID,
			ClientSecret:      cc.ClientSecret.Reveal(),
			TokenURL:          cc.TokenURL,
			Issuer:            cc.Issuer,
			Scopes:            cc.Scopes,
			Resource:          cc.Resource,
			AuthMethod:        string(cc.AuthMethod),
			PrivateKey:        key,
			Algorithm:         cc.Algorithm,
			KeyID:             cc.KeyID,
			Certificate:       cert,
			AssertionAudience: cc.AssertionAudience,
		}, nil
	}
	var err error
	switch {
	case uc.Stdio != nil:
		s := uc.Stdio
		env := make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			env[k] = v.Reveal()
		}
		spec.Stdio = &upstream.StdioSpec{Command: s.Command, Args: s.Args, Env: env, Dir: s.Dir, MinBackoff: s.MinBackoff, MaxBackoff: s.MaxBackoff, ShutdownGrace: s.ShutdownGrace}
	case uc.HTTP != nil:
		h := &upstream.HTTPSpec{URL: uc.HTTP.URL, Header: header(uc.HTTP.Headers, uc.HTTP.BearerToken), TLSInsecureSkipVerify: uc.HTTP.TLSInsecureSkipVerify}
		switch uc.HTTP.Era {
		case config.EraModern:
			h.Era = mcpguard.EraModern
		case config.EraLegacy:
			h.Era = mcpguard.EraLegacy
		}
		h.ClientCredentials, err = credentials(uc.HTTP.ClientCredentials)
		spec.HTTP = h
	case uc.SSE != nil:
		s := &upstream.SSESpec{URL: uc.SSE.URL, Header: header(uc.SSE.Headers, uc.SSE.BearerToken)}
		s.ClientCredentials, err = credentials(uc.SSE.ClientCredentials)
		spec.SSE = s
	}
	if err != nil {
		return upstream.Spec{}, fmt.Errorf("upstream %q: %w", uc.Name, err)
	}
	return spec, nil
}
