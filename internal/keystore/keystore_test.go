package keystore

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// TestKeysSurviveReopenAndRevocationIsImmediate: a key created through authn.APIKeys verifies
// after the database is reopened (as the CLI and the gateway are separate processes), and a
// revocation made through a second handle is seen by the next verification through the first.
func TestKeysSurviveReopenAndRevocationIsImmediate(t *testing.T) {
	ctx := context.Background()
	path := sqldbtest.DSN(t, "keys.db")
	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	secret, rec, err := authn.NewAPIKeys(cli, nil).Create(ctx, "pricing-agent", []string{"MarketAnalystAI"}, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); !sqldbtest.Postgres() && (err != nil || fi.Mode().Perm() != 0o600) {
		t.Errorf("key database mode: %v %v, want 0600: it holds credentials' hashes", fi.Mode().Perm(), err)
	}
	gw, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	keys := authn.NewAPIKeys(gw, nil)
	p, err := keys.Verify(ctx, secret.Reveal())
	if err != nil || p.Subject != "pricing-agent" || len(p.Roles) != 1 || p.Roles[0] != "MarketAnalystAI" {
		t.Fatalf("verify a fresh key: %+v %v", p, err)
	}
	list, err := gw.ListAPIKeys(ctx)
	if err != nil || len(list) != 1 || list[0].ID != rec.ID || list[0].ExpiresAt.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := authn.NewAPIKeys(cli, nil).Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if _, err := keys.Verify(ctx, secret.Reveal()); err == nil {
		t.Fatal("a revoked key still verifies")
	}
	if err := gw.RevokeAPIKey(ctx, "no-such-id", time.Now()); !errors.Is(err, authn.ErrNotFound) {
		t.Errorf("revoking an unknown id: %v, want ErrNotFound", err)
	}
}
