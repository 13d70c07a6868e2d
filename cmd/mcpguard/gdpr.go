package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/gdpr"
)

// Exit statuses of the data-subject, hold and prune commands, besides 1 for any other failure
// (docs/cli.md).
const (
	exitHeld      = 4 // refused: a legal hold covers what the command would destroy
	exitNoSubject = 5 // no key is held for the subject: never recorded, or erased already
)

// complianceHelp is the help text shared by the gdpr, hold and audit prune commands.
const complianceHelp = `These commands append to the audit log themselves (the record of the act, with the operator
who made it): run them while the gateway is stopped (the log has one writer; the command
refuses to start when the log holds records its newest checkpoint does not cover, as a running
gateway leaves it), or use the admin API. The operator authenticates as for the other
administrative commands:

  export ` + operatorTokenEnv + `=$(mcpguard operators login --config FILE NAME)

Exit status: 0 done; 1 failed (a usage error too); 4 refused because a legal hold covers it;
5 no key is held for the subject (never recorded, or erased already).`

// complianceSession is what a data-subject, hold or prune command works with: the operator who
// runs it and the audit log.
type complianceSession struct {
	actor gdpr.Actor
	c     *wiring.Compliance
}

// openCompliance authenticates the operator and opens the audit log of the configuration at
// cfgPath; the caller closes it.
func openCompliance(ctx context.Context, cfgPath string, env adminEnv) (*complianceSession, error) {
	id, actor, err := openAsActor(ctx, cfgPath, env)
	if err != nil {
		return nil, err
	}
	cfg := id.cfg
	id.Close()
	c, err := wiring.OpenCompliance(ctx, cfg, nil, env.withDefaults().now)
	if err != nil {
		return nil, err
	}
	return &complianceSession{c: c, actor: gdpr.Actor{Principal: actor.Principal, Roles: actor.Roles, AuthMethod: actor.AuthMethod, Via: "cli"}}, nil
}

func (s *complianceSession) Close() error { return s.c.Close() }

// complianceExit gives a refusal its exit status.
func complianceExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gdpr.ErrHeld):
		return withExit(exitHeld, err)
	case errors.Is(err, gdpr.ErrNoSubject):
		return withExit(exitNoSubject, err)
	}
	return err
}

func newGDPRCmd() *cobra.Command { return newGDPRCmdWith(adminEnv{}) }

// newGDPRCmdWith is the gdpr command: data-subject access (export) and erasure.
func newGDPRCmdWith(env adminEnv) *cobra.Command {
	var cfgPath, received string
	cmd := &cobra.Command{
		Use:   "gdpr",
		Short: "Serve data subjects: export (access, portability) and erase their records' personal data",
		Long: "A data subject's identifier, where compliance.subjects names it, is sealed under the subject's own key;\n" +
			"export decrypts every record about the subject, erase destroys the key (docs/gdpr.md).\n\n" + complianceHelp,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (required)")
	_ = cmd.MarkPersistentFlagRequired("config")

	var out string
	export := &cobra.Command{
		Use:   "export --config FILE SUBJECT [--out FILE]",
		Short: "Every record about SUBJECT, decrypted, as portable JSON; the request is recorded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at, err := gdpr.ParseReceived(received)
			if err != nil {
				return err
			}
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			s.actor.Received = at
			ex, err := s.c.Service.Export(cmd.Context(), args[0], s.actor)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return complianceExit(err)
			}
			if out != "" {
				return writeJSONFile(out, ex)
			}
			return writeJSON(cmd.OutOrStdout(), ex)
		},
	}
	export.Flags().StringVar(&out, "out", "", "write the export to this file (mode 0600) instead of the standard output")

	var reason string
	erase := &cobra.Command{
		Use:   "erase --config FILE SUBJECT [--reason TEXT]",
		Short: "Destroy SUBJECT's key: its records stay and verify, their personal data is unreadable",
		Long: "Refused (exit status 4) while a legal hold covers the subject or one of its records. The erasure record\n" +
			"names the subject only by its commitment and the destroyed key's id; give no personal data in --reason.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at, err := gdpr.ParseReceived(received)
			if err != nil {
				return err
			}
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			s.actor.Received = at
			er, err := s.c.Service.Erase(cmd.Context(), args[0], reason, s.actor)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return complianceExit(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "erased: key %s destroyed; erasure record %d\n", er.Keys[0], er.RecordSeq)
			return nil
		},
	}
	erase.Flags().StringVar(&reason, "reason", "", "why (the request's reference; no personal data), at most 512 bytes")
	cmd.PersistentFlags().StringVar(&received, "received", "", "when the data subject's request arrived (2026-11-30 or RFC 3339): recorded, so the compliance report shows the time to completion")
	cmd.AddCommand(export, erase)
	return cmd
}

// newAuditPrune is audit prune: apply the configured retention now.
func newAuditPrune() *cobra.Command { return newAuditPruneWith(adminEnv{}) }

func newAuditPruneWith(env adminEnv) *cobra.Command {
	var cfgPath, nowText string
	cmd := &cobra.Command{
		Use:   "prune --config FILE [--now TIME]",
		Short: "Apply the retention (compliance.retention) now: remove the payload of records past it",
		Long: "Removes the payload of every record older than its kind's retention, except those a legal hold covers,\n" +
			"after appending a retention record that names them; the log still verifies (docs/audit.md, \"Retention\").\n" +
			"--now dates the run (RFC 3339), for tests that move the clock: audit verify refuses a retention record\n" +
			"dated after its own clock or after the records that follow it.\n\n" + complianceHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := env.withDefaults()
			now := env.now()
			if nowText != "" {
				t, err := time.Parse(time.RFC3339Nano, nowText)
				if err != nil {
					return fmt.Errorf("--now %q: want RFC 3339 (2033-01-01T00:00:00Z)", nowText)
				}
				now = t
				env.now = func() time.Time { return t }
			}
			s, err := openCompliance(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			policies, err := wiring.RetentionPolicies(s.c.Config.Compliance, now)
			var res *gdpr.PruneResult
			if err == nil {
				res, err = s.c.Service.Prune(cmd.Context(), now, policies, s.actor)
			}
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %d records (%d kept by legal holds); retention records %v\n", res.Pruned, res.Held, res.Records)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (required)")
	cmd.Flags().StringVar(&nowText, "now", "", "date the run at this time instead of the clock (tests)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// writeJSONFile writes v as JSON to a new file only its owner can read (an export holds
// personal data).
func writeJSONFile(path string, v any) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
