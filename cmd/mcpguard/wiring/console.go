package wiring

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/console"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// console builds the operators' web console (admin.console) over what it reads and changes (admin.console): the
// operator accounts and the identities database, the audit log's store and the public key of
// its checkpoints. Call it after auth and audit.
func (b *builder) console(ctx context.Context, cfg *config.Config) error {
	if cfg.Admin == nil || !cfg.Admin.Console {
		return nil
	}
	if b.keys == nil || b.operators == nil {
		return errors.New("admin.console: operator accounts live in api_keys_database, which is not configured")
	}
	key, err := cfg.IdentityKey()
	if err != nil {
		return err
	}
	ops, err := b.keys.Operators(ctx, &keystore.OperatorOptions{SecretKey: key})
	if err != nil {
		return fmt.Errorf("admin.console: %w", err)
	}
	st := &console.Stores{Operators: b.operators, Keys: b.keys, OperatorStore: ops}
	if b.auditStore != nil && cfg.Audit != nil {
		signer, err := audit.LoadSigner(cfg.Audit.SigningKeyFile)
		if err != nil {
			return fmt.Errorf("admin.console: %w", err)
		}
		st.Audit, st.Verifier = b.auditStore, audit.SignerVerifier(signer)
	}
	b.p.Console = func(d parts.ConsoleDeps) (http.Handler, error) {
		return console.New(d.Gateway, *st, &console.Options{Logger: d.Logger, Now: d.Now, Approvals: d.Approvals,
			Blocks: d.Blocks, Pins: d.Pins, AuditStats: d.AuditStats, OIDC: cfg.Admin.OIDC != nil})
	}
	return nil
}
