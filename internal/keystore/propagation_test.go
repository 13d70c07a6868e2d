package keystore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// BenchmarkRevocationPropagation measures how long a key revoked through one instance's
// handle on a shared PostgreSQL database takes to be refused through another's: from the
// revocation's commit to the other instance's first refusal, which is its next verification,
// since every verification reads the database. Reports p50 and p99.
func BenchmarkRevocationPropagation(b *testing.B) {
	dsn := sqldbtest.Schema(b)
	ctx := context.Background()
	a, err := Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	onA, onC := authn.NewAPIKeys(a, nil), authn.NewAPIKeys(c, nil)
	var lat []time.Duration
	for b.Loop() {
		secret, rec, err := onA.Create(ctx, "agent", []string{"interop"}, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := onC.Verify(ctx, secret.Reveal()); err != nil {
			b.Fatalf("a fresh key on the other instance: %v", err)
		}
		if err := onA.Revoke(ctx, rec.ID); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			if _, err := onC.Verify(ctx, secret.Reveal()); err != nil {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal("the revoked key still verifies on the other instance after 10 s")
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
