package authn

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkValidate measures verifying a token: cold (signature checked every time, the cache
// disabled) and cached (the steady state of a client reusing its token).
func BenchmarkValidate(b *testing.B) {
	idp := newIdP(b, "")
	clk := newClock()
	ctx := context.Background()
	for _, alg := range []struct {
		name   string
		method jwt.SigningMethod
		kid    string
		key    any
	}{
		{"RS256", jwt.SigningMethodRS256, "rsa1", testRSA()},
		{"ES256", jwt.SigningMethodES256, "ec1", testEC()},
		{"EdDSA", jwt.SigningMethodEdDSA, "ed1", testEd()},
	} {
		tok := sign(b, alg.method, alg.kid, alg.key, idp.claims(clk.Now()))
		for _, mode := range []struct {
			name string
			size int
		}{{"cold", -1}, {"cached", 0}} {
			b.Run(alg.name+"/"+mode.name, func(b *testing.B) {
				v := newTestValidator(b, idp, clk, &ValidatorOptions{CacheSize: mode.size})
				if _, err := v.Validate(ctx, tok); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Validate(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
