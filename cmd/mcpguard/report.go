package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/report"
)

// Exit statuses of mcpguard report verify beyond those of audit verify (exitVerified 0,
// exitTampered 1, exitUsage 2).
const (
	// exitUnauthenticated: the report is intact and signed by the key it names, but no --key
	// said whose key that must be.
	exitUnauthenticated = 3
)

func newReportCmd() *cobra.Command {
	var f auditFlags
	var wf witnessFlags
	var cfgPath, signingKey, from, to, format, output, browser string
	var orderTools []string
	var maxRows int
	cmd := &cobra.Command{
		Use:   "report --from T --to T [--format html|pdf|json] [-o FILE] (--config FILE | --db FILE --signing-key KEY --checkpoints DIR)",
		Short: "Build the signed compliance report of a period from the verified audit log (HTML, PDF or JSON)",
		Long: "Verifies the whole audit log first (as audit verify does) and refuses, with the reason, a log that does\n" +
			"not verify. Then reads the records of the period and writes the evidence SOX, MiFID II, GDPR and GLBA ask\n" +
			"for, each row of the controls mapping a section (docs/report.md). The report carries a digest signed\n" +
			"with the log's checkpoint key; a PDF (printed by headless Chromium from the HTML) gets FILE.sig beside\n" +
			"it. Check a report with `mcpguard report verify FILE --key LOG.pub`.\n\n" +
			"Exit status:\n" +
			"  0  the report was written\n" +
			"  1  the log does not verify: no report was written (the problems are printed)\n" +
			"  2  usage error, or the database, keys, checkpoint directory or a --witness-url could not be read,\n" +
			"     or the report could not be written or printed",
		Args: func(cmd *cobra.Command, args []string) error {
			return withExit(exitUsage, cobra.NoArgs(cmd, args))
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts, k, err := reportOptions(&f, cfgPath, signingKey, from, to, orderTools, maxRows, &wf)
			if err != nil {
				return withExit(exitUsage, err)
			}
			fm := report.Format(format)
			if fm != report.FormatHTML && fm != report.FormatJSON && fm != report.FormatPDF {
				return withExit(exitUsage, fmt.Errorf("--format %q: want html, pdf or json", format))
			}
			if fm == report.FormatPDF && (output == "" || output == "-") {
				return withExit(exitUsage, errors.New("--format pdf needs -o FILE: the signature is written beside it as FILE.sig"))
			}
			if opts.RequireWitnesses {
				if opts.Extra, err = witnessedCheckpoints(cmd, &wf, k, opts.Origin, f.checkpoints); err != nil {
					return err
				}
			}
			st, err := f.open(ctx)
			if err != nil {
				return withExit(exitUsage, err)
			}
			defer st.Close()
			progress := cmd.ErrOrStderr()
			opts.Progress = func(stage string, done, total int64) {
				fmt.Fprintf(progress, "%s: %d of %d records\n", stage, done, total)
			}
			r, err := report.Build(ctx, st, opts)
			if errors.Is(err, report.ErrNotVerified) {
				return withExit(exitTampered, err)
			}
			if err != nil {
				return withExit(exitUsage, err)
			}
			var data, sig []byte
			switch fm {
			case report.FormatJSON:
				data, err = report.JSON(r, k)
			default:
				data, err = report.HTML(r, k)
				if err == nil && fm == report.FormatPDF {
					if data, err = report.PDF(ctx, browser, data); err == nil {
						sig, err = report.SignPDF(r, k, data)
					}
				}
			}
			if err != nil {
				return withExit(exitUsage, err)
			}
			if err := writeReport(cmd.OutOrStdout(), output, data, sig); err != nil {
				return withExit(exitUsage, err)
			}
			if output != "" && output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "report of %s to %s written to %s (%d records in the period, %d orders, %d segregation-of-duties violations); check it with mcpguard report verify %s --key LOG.pub\n",
					r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), output, r.Activity.Records, r.MiFID.OrdersTotal, r.SOX.ViolationsTotal, output)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExit(exitUsage, err) })
	cmd.Flags().StringVar(&cfgPath, "config", "", "the gateway's configuration: its audit database, signing key, checkpoint directory and witnesses")
	f.storeFlags(cmd)
	cmd.Flags().StringVar(&signingKey, "signing-key", "", "the log's signing key file (audit.signing_key_file): checks the checkpoints and signs the report")
	cmd.Flags().StringVar(&f.checkpoints, "checkpoints", "", "the log's checkpoint directory (audit.checkpoint_dir)")
	cmd.Flags().StringVar(&f.origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	cmd.Flags().StringVar(&from, "from", "", "start of the period (inclusive): RFC 3339 (2026-11-01T00:00:00Z) or a duration ago (720h)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period (exclusive): RFC 3339 or a duration ago (0s: now)")
	cmd.Flags().StringVar(&format, "format", "html", "html, pdf or json")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default standard output; required for pdf)")
	cmd.Flags().StringSliceVar(&orderTools, "order-tool", nil, "a tool whose calls are orders for MiFID II, as exposed; * matches any characters but / (repeatable; default "+strings.Join(report.DefaultOrderTools, ",")+")")
	cmd.Flags().IntVar(&maxRows, "max-rows", report.DefaultMaxRows, fmt.Sprintf("rows listed per table, 1..%d (counts and charts cover every record)", report.MaxMaxRows))
	cmd.Flags().StringVar(&browser, "chromium", report.DefaultChromium, "the Chromium that prints PDF reports")
	wf.flags(cmd)
	cmd.AddCommand(newReportVerify())
	return cmd
}

// reportOptions gathers the report's options from the flags and, with --config, the gateway's
// configuration (flags given explicitly win).
func reportOptions(f *auditFlags, cfgPath, signingKey, from, to string, orderTools []string, maxRows int, wf *witnessFlags) (report.Options, *report.Key, error) {
	var opts report.Options
	if cfgPath != "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return opts, nil, err
		}
		if cfg.Audit == nil {
			return opts, nil, fmt.Errorf("%s has no audit section: there is no log to report on", cfgPath)
		}
		if f.db == "" && f.postgres == "" {
			if dsn := cfg.Audit.Database.Reveal(); strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
				f.postgres = dsn
			} else {
				f.db = dsn
			}
		}
		if signingKey == "" {
			signingKey = cfg.Audit.SigningKeyFile
		}
		if f.checkpoints == "" {
			f.checkpoints = cfg.Audit.CheckpointDir
		}
		if len(wf.keys) == 0 {
			for _, w := range cfg.Audit.Witnesses {
				wf.keys, wf.urls = append(wf.keys, w.Key), append(wf.urls, w.URL)
			}
		}
	}
	if signingKey == "" {
		return opts, nil, errors.New("name the log's signing key with --signing-key FILE or --config FILE: it checks the log's checkpoints and signs the report")
	}
	k, err := report.LoadKey(signingKey)
	if err != nil {
		return opts, nil, err
	}
	now := time.Now()
	if opts.From, err = parseWhen(from, now); err != nil || from == "" {
		return opts, nil, fmt.Errorf("--from: %w", cmpErr(err, "the start of the period is required"))
	}
	if opts.To, err = parseWhen(to, now); err != nil || to == "" {
		return opts, nil, fmt.Errorf("--to: %w", cmpErr(err, "the end of the period is required"))
	}
	wc, err := wf.parse()
	if err != nil {
		return opts, nil, err
	}
	if wc != nil {
		opts.Witnesses, opts.RequireWitnesses = wc.keys, true
	}
	opts.Signer, opts.Origin, opts.CheckpointDir = k.Signer, f.origin, f.checkpoints
	opts.OrderTools, opts.MaxRows = orderTools, maxRows
	if maxRows <= 0 {
		return opts, nil, fmt.Errorf("--max-rows %d: want 1..%d", maxRows, report.MaxMaxRows)
	}
	return opts, k, nil
}

func cmpErr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// witnessedCheckpoints collects what the required witnesses cosigned: from each --witness-url
// (what the witness holds, beyond the operator's reach) and the cosigned copies in the
// checkpoint directory, as audit verify --witness does. A missing or forged cosignature fails
// verification, so no report is built.
func witnessedCheckpoints(cmd *cobra.Command, wf *witnessFlags, k *report.Key, origin, dir string) ([]audit.ExternalCheckpoint, error) {
	wc, err := wf.parse()
	if err != nil || wc == nil {
		return nil, withExit(exitUsage, err)
	}
	logKey, err := note.NewVerifier(k.Verifier)
	if err != nil {
		return nil, withExit(exitUsage, err)
	}
	found, err := wc.collect(cmd.Context(), logKey, origin, dir)
	if err != nil {
		return nil, withExit(exitUsage, err)
	}
	for _, line := range found.lines {
		fmt.Fprintln(cmd.ErrOrStderr(), line)
	}
	if len(found.problems) > 0 {
		return nil, withExit(exitTampered, fmt.Errorf("%w: %s", report.ErrNotVerified, found.problems[0].What))
	}
	return found.extra, nil
}

// writeReport writes data to output (standard output for "" or "-") and, for a PDF, its
// signature to output.sig. Files are written whole or not at all.
func writeReport(stdout io.Writer, output string, data, sig []byte) error {
	if output == "" || output == "-" {
		_, err := stdout.Write(data)
		return err
	}
	dir, name := filepath.Split(output)
	if dir == "" {
		dir = "."
	}
	if sig != nil {
		if err := audit.WriteFileDurably(dir, name+".sig", sig); err != nil {
			return fmt.Errorf("write %s.sig: %w", output, err)
		}
	}
	if err := audit.WriteFileDurably(dir, name, data); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	return nil
}

func newReportVerify() *cobra.Command {
	var key, sigPath string
	cmd := &cobra.Command{
		Use:   "verify FILE [--key PUBLIC] [--sig FILE.sig]",
		Short: "Check a report's signed digest and signature, saying exactly what failed",
		Long: "Recomputes the digest of the report (HTML, JSON, or a PDF with its FILE.sig) and checks the signed\n" +
			"statement with the log's public key. A report of which one byte was changed is refused.\n\n" +
			"Exit status:\n" +
			"  0  the report is intact and signed by --key\n" +
			"  1  refused: changed after signing, signed by another key, or not a signed report (the reason is printed)\n" +
			"  2  usage error, or the report, its .sig or the key could not be read\n" +
			"  3  intact and signed by the key the report names, but without --key nothing says that key is the log's",
		Args: func(cmd *cobra.Command, args []string) error {
			return withExit(exitUsage, cobra.ExactArgs(1)(cmd, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return withExit(exitUsage, err)
			}
			var trusted note.Verifier
			if key != "" {
				if trusted, err = readLogKey(key); err != nil {
					return withExit(exitUsage, fmt.Errorf("--key: %w", err))
				}
			}
			var detached []byte
			if report.SniffFormat(data) == report.FormatPDF || sigPath != "" {
				if sigPath == "" {
					sigPath = args[0] + ".sig"
				}
				if detached, err = os.ReadFile(sigPath); err != nil {
					return withExit(exitTampered, fmt.Errorf("%w: a PDF report is signed in %s, which could not be read: %v", report.ErrRefused, sigPath, err))
				}
			}
			v, err := report.VerifyFile(data, detached, trusted)
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "REFUSED: %s\n", strings.TrimPrefix(err.Error(), report.ErrRefused.Error()+": "))
				return withExit(exitTampered, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s report of %s (records %s to %s, %d records in the log), digest %s\n", v.Format, v.Origin,
				v.From.Format(time.RFC3339), v.To.Format(time.RFC3339), v.Records, v.Digest)
			if !v.Trusted {
				fmt.Fprintf(w, "INTACT, NOT AUTHENTICATED: signed by the key the report names, %s; pass the log's public key with --key to check that it is the log's\n", v.Key)
				return withExit(exitUnauthenticated, errors.New("no --key: the report is intact, but who signed it was not checked"))
			}
			fmt.Fprintf(w, "OK: signed by %s\n", v.KeyName)
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExit(exitUsage, err) })
	cmd.Flags().StringVar(&key, "key", "", "the log's public key: its .pub file (audit keygen) or the key itself")
	cmd.Flags().StringVar(&sigPath, "sig", "", "the detached signature (default FILE.sig; a PDF needs one)")
	return cmd
}
