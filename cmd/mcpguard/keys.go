package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// unknownRoles lists the roles of roles that the configuration's policy does not define: a key
// holding only such roles is denied everything (a typo such as MarketAnalystAl). Without a policy,
// or one that does not load, there is nothing to compare with.
func unknownRoles(cfg *config.Config, roles []string) []string {
	if cfg.PolicyFile == "" {
		return nil
	}
	p, err := policy.ParseFile(cfg.PolicyFile, &policy.Options{Namespace: cfg.PolicyNamespace()})
	if err != nil {
		return nil
	}
	var unknown []string
	for _, r := range roles {
		if !p.Defines(r) {
			unknown = append(unknown, r)
		}
	}
	return unknown
}

// parseTTL reads a lifetime such as "90d", "12h" or "0" (never expires).
func parseTTL(s string) (time.Duration, error) {
	if s == "0" || s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("--expires %q: want a number of days from 1 to 3650 (\"90d\"), a duration (\"12h\") or \"never\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a number of days (\"90d\"), a duration (\"12h\") or \"never\"", s)
	}
	return d, nil
}

func newKeysCmd() *cobra.Command { return newKeysCmdWith(adminEnv{}) }

func newKeysCmdWith(env adminEnv) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys for agents without an identity provider",
		Long:  "Create, list and revoke API keys for agents without an identity provider.\n\n" + authHelp,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (names api_keys_database)")
	_ = cmd.MarkPersistentFlagRequired("config")

	var principal, roles, expires string
	create := &cobra.Command{
		Use:   "create --config FILE --principal NAME --roles R1,R2 [--expires 90d]",
		Short: "Create a key; it is printed once and stored only as a hash",
		Long:  "Create a key; it is printed once and stored only as a hash. The audit log records the key's id, never the key.\n\n" + authHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" {
				return errors.New("--principal is required: the subject requests made with the key act as")
			}
			ttl, err := parseTTL(expires)
			if err != nil {
				return err
			}
			list := splitRoles(roles)
			ctx := cmd.Context()
			id, actor, err := openAsActor(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			cfg := id.cfg
			if unknown := unknownRoles(cfg, list); len(unknown) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the policy %s defines no role %s: the key is granted nothing by it (a typo?)\n",
					cfg.PolicyFile, strings.Join(unknown, ", "))
			}
			e := journal.NewEntry(journal.ActAPIKeyCreate, actor, id.env.now())
			var secret authn.Secret
			var rec authn.APIKey
			err = id.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error {
				var err error
				secret, rec, err = tx.CreateAPIKey(ctx, e, id.env.now, principal, list, ttl)
				return err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, secret.Reveal())
			exp := "never"
			if !rec.ExpiresAt.IsZero() {
				exp = rec.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s for %s (roles %s), expires %s. It is shown only now: store it in the agent's secret store.\n",
				rec.ID, rec.Principal, strings.Join(rec.Roles, ","), exp)
			return nil
		},
	}
	create.Flags().StringVar(&principal, "principal", "", "the principal (subject) the key acts as")
	create.Flags().StringVar(&roles, "roles", "", "comma-separated roles granted to the key")
	create.Flags().StringVar(&expires, "expires", "90d", `lifetime: days ("90d"), a duration ("12h") or "never"`)

	list := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List keys: id, principal, roles, created, expires, revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := openIdentities(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			keys, err := id.keys.ListAPIKeys(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPRINCIPAL\tROLES\tCREATED\tEXPIRES\tREVOKED")
			when := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.Format(time.RFC3339)
			}
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Principal, strings.Join(k.Roles, ","), when(k.CreatedAt), when(k.ExpiresAt), when(k.RevokedAt))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke --config FILE ID",
		Short: "Revoke a key; the gateway refuses it from the next request on",
		Long:  "Revoke a key; the gateway refuses it from the next request on.\n\n" + authHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			keyID := args[0]
			id, actor, err := openAsActor(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			e := journal.NewEntry(journal.ActAPIKeyRevoke, actor, id.env.now())
			e.Target.KeyID = keyID
			err = id.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error {
				k, err := tx.Keys.APIKey(ctx, keyID)
				if err != nil {
					return err
				}
				e.Target.Principal = k.Principal
				return authn.NewAPIKeys(tx.Keys, &authn.APIKeysOptions{Now: id.env.now}).Revoke(ctx, keyID)
			})
			if err != nil {
				if errors.Is(err, authn.ErrNotFound) {
					return fmt.Errorf("no API key with id %q (see keys list)", keyID)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
