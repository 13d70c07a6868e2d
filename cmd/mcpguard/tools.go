package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/config"
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

func newToolsCmd() *cobra.Command {
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
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				} else {
					by = os.Getenv("USER")
				}
			}
			if by == "" {
				return errors.New("--by is required: who approves")
			}
			p, err := openPins(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer p.Close()
			h, err := p.Approve(cmd.Context(), args[0], by)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s (%s) by %s\n", args[0], h, by)
			return nil
		},
	}
	approve.Flags().StringVar(&by, "by", "", "the operator approving (default: the current user)")
	cmd.AddCommand(pending, diff, approve)
	return cmd
}
