package main

import (
	"errors"
	"fmt"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

func newBlocksCmd() *cobra.Command { return newBlocksCmdWith(adminEnv{}) }

// newBlocksCmdWith is the blocks command: list, block and lift client addresses and principal
// suspensions in the identity database. Every change is an act of an authenticated operator,
// journaled with the change; running gateways read it within a second (their resync).
func newBlocksCmdWith(env adminEnv) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "blocks",
		Short: "List, add and lift blocked addresses and suspended principals",
		Long: "Blocked client addresses are refused before authentication; suspended principals after it. " +
			"Brute force and anomaly detection put them in place on their own; operators list, add and lift them here. " +
			"Running gateways apply a change within a second.\n\n" + authHelp,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (required)")
	_ = cmd.MarkPersistentFlagRequired("config")

	list := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List the blocks and suspensions in force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			id, err := openIdentities(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			bs, err := id.keys.Blocks(ctx)
			if err != nil {
				return err
			}
			blocks, err := bs.Blocks(ctx, id.env.now(), contain.MaxBlocks)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tVALUE\tSINCE\tUNTIL\tBY\tREASON")
			for _, b := range blocks {
				until := "lifted by an operator"
				if !b.Expires.IsZero() {
					until = b.Expires.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Kind, b.Value, b.Created.UTC().Format(time.RFC3339), until, b.Actor, b.Reason)
			}
			return tw.Flush()
		},
	}

	var reason, forText string
	put := func(kind string) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			value, err := blockValue(kind, args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return errors.New("--reason is required: say why, for the audit log")
			}
			var d time.Duration
			if forText != "" {
				if d, err = parseTTL(forText); err != nil {
					return fmt.Errorf("--for: %w", err)
				}
			}
			id, actor, err := openAsActor(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			now := id.env.now()
			b := contain.Block{Kind: kind, Value: value, Reason: reason, Actor: actor.Principal, Created: now}
			if d > 0 {
				b.Expires = now.Add(d)
			}
			act := journal.ActBlockAdd
			if kind == contain.BlockPrincipal {
				act = journal.ActPrincipalSuspend
			}
			e := journal.NewEntry(act, actor, now)
			e.Target = targetOf(kind, value, reason)
			if !b.Expires.IsZero() {
				e.Target.Expires = b.Expires.UTC().Format(time.RFC3339)
			}
			if err := id.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error { return tx.PutBlock(ctx, b) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", map[string]string{contain.BlockAddress: "blocked", contain.BlockPrincipal: "suspended"}[kind], value)
			return nil
		}
	}
	block := &cobra.Command{
		Use:   "block --config FILE --reason TEXT [--for 24h] ADDRESS",
		Short: "Block a client address (refused before authentication)",
		Args:  cobra.ExactArgs(1),
		RunE:  put(contain.BlockAddress),
	}
	suspend := &cobra.Command{
		Use:   "suspend --config FILE --reason TEXT [--for 24h] PRINCIPAL",
		Short: "Suspend a principal (its subject: every credential it holds is refused)",
		Args:  cobra.ExactArgs(1),
		RunE:  put(contain.BlockPrincipal),
	}
	for _, c := range []*cobra.Command{block, suspend} {
		c.Flags().StringVar(&reason, "reason", "", "why, for the audit log (required)")
		c.Flags().StringVar(&forText, "for", "", `how long: days ("7d") or a duration ("12h"); absent, until lifted`)
	}

	lift := &cobra.Command{
		Use:   "lift --config FILE (address ADDRESS | principal PRINCIPAL)",
		Short: "Lift a block or a suspension",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			kind := args[0]
			if kind != contain.BlockAddress && kind != contain.BlockPrincipal {
				return fmt.Errorf("lift what? %q: want \"address\" or \"principal\"", kind)
			}
			value, err := blockValue(kind, args[1])
			if err != nil {
				return err
			}
			id, actor, err := openAsActor(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			act := journal.ActBlockLift
			if kind == contain.BlockPrincipal {
				act = journal.ActPrincipalResume
			}
			e := journal.NewEntry(act, actor, id.env.now())
			e.Target = targetOf(kind, value, "")
			found := false
			err = id.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error {
				var err error
				found, err = tx.LiftBlock(ctx, kind, value)
				if err == nil && !found {
					e.Refuse("not_found")
				}
				return err
			})
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("no %s block on %s (see blocks list)", kind, value)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lifted %s %s\n", kind, value)
			return nil
		},
	}
	cmd.AddCommand(list, block, suspend, lift)
	return cmd
}

// blockValue checks an address (written in canonical form for the store) or a principal.
func blockValue(kind, s string) (string, error) {
	if kind == contain.BlockPrincipal {
		if s == "" || len(s) > 1024 {
			return "", errors.New("a principal is its subject, 1 to 1024 bytes")
		}
		return s, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("%q is not an IP address (\"203.0.113.7\", \"2001:db8::1\")", s)
	}
	return a.Unmap().String(), nil
}

func targetOf(kind, value, note string) journal.Target {
	if kind == contain.BlockPrincipal {
		return journal.Target{Principal: value, Note: note}
	}
	return journal.Target{Address: value, Note: note}
}
