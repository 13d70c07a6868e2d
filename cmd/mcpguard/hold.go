package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/gdpr"
)

func newHoldCmd() *cobra.Command { return newHoldCmdWith(adminEnv{}) }

// newHoldCmdWith is the hold command: place, list and release legal holds, which stop both the
// retention's pruning and the erasure of what they cover.
func newHoldCmdWith(env adminEnv) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Place, list and release legal holds: what a hold covers is neither pruned nor erased",
		Long: "A hold covers the records of a principal, of a data subject, or of a time range. Placing and releasing\n" +
			"one are audit records (kind legal_hold) with the operator who did it (docs/gdpr.md).\n\n" + complianceHelp,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (required)")
	_ = cmd.MarkPersistentFlagRequired("config")

	var req gdpr.HoldRequest
	var from, to string
	add := &cobra.Command{
		Use:   "add --config FILE (--principal P | --subject S | --from T [--to T]) --reason TEXT",
		Short: "Place a legal hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.From, err = parseHoldTime("--from", from); err != nil {
				return err
			}
			if req.Until, err = parseHoldTime("--to", to); err != nil {
				return err
			}
			if to != "" && from == "" {
				return fmt.Errorf("--to needs --from: a range hold starts somewhere")
			}
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			h, err := s.c.Service.AddHold(cmd.Context(), req, s.actor)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hold %s placed\n", h.ID)
			return nil
		},
	}
	add.Flags().StringVar(&req.Principal, "principal", "", "hold every record of this principal")
	add.Flags().StringVar(&req.Subject, "subject", "", "hold every record about this data subject")
	add.Flags().StringVar(&from, "from", "", "hold the records from this time (RFC 3339)")
	add.Flags().StringVar(&to, "to", "", "until this time, exclusive (RFC 3339; absent: open)")
	add.Flags().StringVar(&req.Reason, "reason", "", "the matter the records are preserved for (required; no personal data)")

	list := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List the holds, released ones too",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			holds, err := s.c.Service.Holds(cmd.Context())
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tCOVERS\tPLACED\tBY\tRELEASED\tREASON")
			for _, h := range holds {
				covers := h.Value
				switch h.Kind {
				case gdpr.HoldSubject:
					covers = "subject " + h.Value[:min(16, len(h.Value))] + "…"
				case gdpr.HoldRange:
					covers = orDash(formatHoldTime(h.From)) + " .. " + orDash(formatHoldTime(h.Until))
				}
				released := "in force"
				if !h.Released.IsZero() {
					released = formatHoldTime(h.Released) + " by " + h.ReleasedBy
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Kind, covers, formatHoldTime(h.Created), h.Actor, released, h.Reason)
			}
			return tw.Flush()
		},
	}

	release := &cobra.Command{
		Use:   "release --config FILE ID",
		Short: "Release a hold",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			err = s.c.Service.ReleaseHold(cmd.Context(), args[0], s.actor)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hold %s released\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, release)
	return cmd
}

func parseHoldTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("%s %q: want RFC 3339 (2026-11-21T09:00:00Z)", flag, s)
	}
	return t, nil
}

func formatHoldTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
