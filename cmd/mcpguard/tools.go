package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/pins"
)

func openPins(ctx context.Context, cfgPath string) (*pins.Pinner, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	if cfg.ToolPinning == nil {
		return nil, fmt.Errorf("%s has no tool_pinning section: tool pinning is off", cfgPath)
	}
	return pins.Open(ctx, cfg.ToolPinning.Database, nil)
}

func pretty(canonical string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(canonical), "", "  "); err != nil {
		return canonical
	}
	return b.String()
}

func newToolsCmd() *cobra.Command { return newToolsCmdWith(adminEnv{}) }

func newToolsCmdWith(env adminEnv) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{Use: "tools", Short: "Review and approve tool definitions held back by pinning"}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (names tool_pinning.database)")
	_ = cmd.MarkPersistentFlagRequired("config")

	pending := &cobra.Command{
		Use:   "pending --config FILE",
		Short: "List the tools whose definitions await review, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := openPins(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer p.Close()
			list, err := p.ListPending(cmd.Context())
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no tool definitions await review")
			}
			for _, x := range list {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\tseen %s\t%s\n", x.Name, x.Hash, x.SeenAt.Format("2006-01-02T15:04:05Z"), x.Reason)
			}
			return nil
		},
	}
	diff := &cobra.Command{
		Use:   "diff --config FILE NAME",
		Short: "Show the approved and the pending definition of a tool, line by line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := openPins(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer p.Close()
			list, err := p.ListPending(cmd.Context())
			if err != nil {
				return err
			}
			for _, x := range list {
				if x.Name != args[0] {
					continue
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "tool %s: %s\n", x.Name, x.Reason)
				old, cur := strings.Split(pretty(x.Approved), "\n"), strings.Split(pretty(x.Definition), "\n")
				if x.Approved == "" {
					old = nil
				}
				inOld, inCur := map[string]int{}, map[string]int{}
				for _, l := range old {
					inOld[l]++
				}
				for _, l := range cur {
					inCur[l]++
				}
				for _, l := range old {
					if inCur[l] == 0 {
						fmt.Fprintln(out, "- "+l)
					}
				}
				for _, l := range cur {
					if inOld[l] == 0 {
						fmt.Fprintln(out, "+ "+l)
					}
				}
				return nil
			}
			return fmt.Errorf("no definition of %q awaits review (see tools pending)", args[0])
		},
	}
	var by string
	approve := &cobra.Command{
		Use:   "approve --config FILE NAME",
		Short: "Approve the pending definition of a tool; the gateway serves it again at once",
		Long: `Approve the pending definition of a tool; the gateway serves it again at once. The approver is
the authenticated operator, recorded in the tool pin database (approved_by) and in the audit log
(act tool.approve, with the tool and the definition's digest). Without api_keys_database in the
configuration no operator can exist and approvals are a bootstrap; set it to require
authenticated approvals.

` + authHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by != "" {
				return fmt.Errorf("--by is gone: the approver is the authenticated operator, not a name given on the command line; log in and set %s", operatorTokenEnv)
			}
			ctx := cmd.Context()
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if cfg.ToolPinning == nil {
				return fmt.Errorf("%s has no tool_pinning section: tool pinning is off", cfgPath)
			}
			actor, err := toolsActor(ctx, cfgPath, cfg, env)
			if err != nil {
				return err
			}
			p, err := pins.Open(ctx, cfg.ToolPinning.Database, nil)
			if err != nil {
				return err
			}
			defer p.Close()
			act := journal.NewEntry(journal.ActToolApprove, actor, env.withDefaults().now())
			h, err := p.Approve(ctx, args[0], act)
			if errors.Is(err, pins.ErrNothingPending) {
				act.Target.Tool = args[0]
				act.Refuse("not_pending")
				if rerr := p.Record(ctx, act); rerr != nil {
					return errors.Join(err, fmt.Errorf("recording the refusal: %w", rerr))
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s (%s) by %s\n", args[0], h, actor.Principal)
			return nil
		},
	}
	approve.Flags().StringVar(&by, "by", "", "removed: the approver is the authenticated operator")
	_ = approve.Flags().MarkHidden("by")
	cmd.AddCommand(pending, diff, approve)
	return cmd
}

// toolsActor authenticates who approves a tool definition. Operators live in the identities
// database (api_keys_database); without one no operator can exist, and the approval is a
// bootstrap.
func toolsActor(ctx context.Context, cfgPath string, cfg *config.Config, env adminEnv) (journal.Actor, error) {
	env = env.withDefaults()
	if cfg.APIKeysDatabase == "" {
		if env.getenv(operatorTokenEnv) != "" {
			return journal.Actor{}, fmt.Errorf("%s is set, but %s has no api_keys_database to check it against: set api_keys_database to the identities database", operatorTokenEnv, cfgPath)
		}
		a := cliActor()
		a.Principal, a.AuthMethod = journal.BootstrapPrincipal, journal.AuthBootstrap
		return a, nil
	}
	id, err := openIdentitiesOf(ctx, cfgPath, cfg, env)
	if err != nil {
		return journal.Actor{}, err
	}
	defer id.Close()
	return id.actor(ctx)
}
