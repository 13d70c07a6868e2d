package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// auditFlags name the audit store and the keys every audit subcommand may need.
type auditFlags struct {
	db, postgres, schema string
	log                  string
	key, checkpoints     string
	origin               string
}

func (f *auditFlags) storeFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.db, "db", "", "SQLite audit database file")
	cmd.Flags().StringVar(&f.postgres, "postgres", "", "PostgreSQL DSN of the audit database (instead of --db)")
	cmd.Flags().StringVar(&f.schema, "schema", "public", "PostgreSQL schema holding the audit tables")
	cmd.Flags().StringVar(&f.log, "log", "", "PostgreSQL: the instance's log (audit.log); empty: the default log")
	// A named log has its own origin and checkpoint directory (audit.Named), unless --origin
	// says otherwise.
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if f.log != "" && !c.Flags().Changed("origin") {
			f.origin, f.checkpoints = audit.Named(f.log, f.checkpoints)
		}
		return run(c, args)
	}
}

func (f *auditFlags) keyFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.key, "key", "", "file holding the log's public (verifier) key, as written by audit keygen")
	cmd.Flags().StringVar(&f.origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	_ = cmd.MarkFlagRequired("key")
}

func (f *auditFlags) open(ctx context.Context) (store.Store, error) {
	switch {
	case f.db != "" && f.postgres != "":
		return nil, errors.New("give --db or --postgres, not both")
	case f.db != "" && f.log != "":
		return nil, errors.New("--log names an instance's log in a PostgreSQL database (--postgres); a SQLite file holds one log")
	case f.db != "":
		if _, err := os.Stat(f.db); err != nil {
			return nil, fmt.Errorf("audit database: %w", err)
		}
		return sqlite.Open(ctx, f.db, &sqlite.Options{ReadOnly: true})
	case f.postgres != "":
		return postgres.Open(ctx, f.postgres, &postgres.Options{Schema: f.schema, Log: f.log, Conns: 1})
	}
	return nil, errors.New("name the audit database with --db FILE or --postgres DSN")
}

// openWritable opens the store f names for writing.
func (f *auditFlags) openWritable(ctx context.Context) (store.Store, error) {
	switch {
	case f.db != "" && f.postgres != "":
		return nil, errors.New("give --db or --postgres, not both")
	case f.db != "" && f.log != "":
		return nil, errors.New("--log names an instance's log in a PostgreSQL database (--postgres); a SQLite file holds one log")
	case f.db != "":
		if _, err := os.Stat(f.db); err != nil {
			return nil, fmt.Errorf("audit database: %w", err)
		}
		return sqlite.Open(ctx, f.db, nil)
	case f.postgres != "":
		return postgres.Open(ctx, f.postgres, &postgres.Options{Schema: f.schema, Log: f.log, Conns: 1, Lease: true})
	}
	return nil, errors.New("name the audit database with --db FILE or --postgres DSN")
}

// deployment returns one auditFlags per log of the deployment f names: with --postgres and no
// --log, every log the database holds (each instance's, with its origin and checkpoint
// directory: audit.Named); otherwise f alone.
func (f *auditFlags) deployment(ctx context.Context, cmd *cobra.Command) ([]auditFlags, error) {
	if f.postgres == "" || cmd.Flags().Changed("log") {
		return []auditFlags{*f}, nil
	}
	st, err := postgres.Open(ctx, f.postgres, &postgres.Options{Schema: f.schema, Conns: 1})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	logs, err := st.Logs(ctx)
	if err != nil {
		return nil, err
	}
	if len(logs) <= 1 && (len(logs) == 0 || logs[0].Name == "") {
		return []auditFlags{*f}, nil
	}
	out := make([]auditFlags, 0, len(logs))
	for _, l := range logs {
		g := *f
		g.log = l.Name
		g.origin, g.checkpoints = audit.Named(l.Name, f.checkpoints)
		out = append(out, g)
	}
	return out, nil
}

func (f *auditFlags) verifier() (note.Verifier, error) {
	return readVerifier(f.key)
}

func readVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return v, nil
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Keys, verification, proofs, search and export of the tamper-evident audit log"}
	cmd.AddCommand(newAuditKeygen(), newAuditVerify(), newAuditProof(), newAuditConsistency(),
		newAuditCheckProof(), newAuditSearch(), newAuditExport(), newAuditAccept(), newAuditPrune())
	return cmd
}

func newAuditKeygen() *cobra.Command {
	var name, dir string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME [--dir DIR]",
		Short: "Create an Ed25519 checkpoint signing key (NAME.key, mode 0600) and its public key (NAME.pub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, vkey, err := writeAuditKeys(dir, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key: %s (keep it secret; reference it as file:%s)\npublic key:  %s\n%s\n", priv, priv, pub, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "key name (appears in every checkpoint signature)")
	cmd.Flags().StringVar(&dir, "dir", ".", "directory for the two key files")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// writeAuditKeys creates a checkpoint signing key in dir as NAME.key (mode 0600, never
// overwritten) and its verifier key as NAME.pub, and returns both paths and the verifier key.
func writeAuditKeys(dir, name string) (priv, pub, vkey string, err error) {
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		return "", "", "", fmt.Errorf("generate key: %w", err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", "", fmt.Errorf("write signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return "", "", "", fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", "", fmt.Errorf("write signing key: %w", err)
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		return "", "", "", fmt.Errorf("write public key: %w", err)
	}
	return priv, pub, vkey, nil
}

// Exit codes of mcpguard audit verify (and the status main gives any error carrying one).
const (
	exitVerified   = 0 // every record verified, and at most --max-uncovered not yet covered
	exitTampered   = 1 // an integrity failure: the log was changed (or any other error of mcpguard)
	exitUsage      = 2 // bad flags or arguments, or the log could not be read
	exitIncomplete = 3 // the records verify, but too many are not covered by a signed checkpoint
)

// exitError is an error with the process exit status it calls for.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit gives err the exit status code (nil stays nil).
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitCode is the process exit status for an error returned by a command: the one it carries,
// else 1.
func exitCode(err error) int {
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return exitTampered
}

func newAuditVerify() *cobra.Command {
	var f auditFlags
	var quiet bool
	var maxUncovered int64
	var wf witnessFlags
	cmd := &cobra.Command{
		Use:   "verify --db FILE --key PUB --checkpoints DIR [--max-uncovered N] [--witness KEY --witness-url URL]",
		Short: "Recompute every record hash and the Merkle tree, and check them against every signed checkpoint",
		Long: "Checks every record, the tree and every signed checkpoint, naming the first bad record.\n" +
			"Without --checkpoints a truncated tail or a replaced log cannot be detected.\n" +
			"With --witness KEY (repeatable), a checkpoint cosigned by each such witness is required, and\n" +
			"the log must extend the newest one: the witnesses at --witness-url are asked for theirs, and the\n" +
			"cosigned copies in the checkpoint directory are read, so a log truncated below a witnessed\n" +
			"size is caught even when the newest checkpoint files were deleted too.\n\n" +
			"Exit status:\n" +
			"  0  verified, and at most --max-uncovered records are not covered by a signed checkpoint\n" +
			"  1  tampered: any integrity failure (the problems are listed)\n" +
			"  2  usage error, or the database, key, checkpoint directory or a --witness-url could not be read\n" +
			"  3  incomplete: the records verify, but more than --max-uncovered of them are not covered\n" +
			"     by any signed checkpoint (a gateway that is running, or one that crashed or was\n" +
			"     stopped without its final checkpoint; records added while it was stopped look the same)",
		Args: func(cmd *cobra.Command, args []string) error {
			return withExit(exitUsage, cobra.NoArgs(cmd, args))
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.key == "" {
				return withExit(exitUsage, errors.New(`required flag "key" not set`))
			}
			if maxUncovered < 0 {
				return withExit(exitUsage, errors.New("--max-uncovered must be 0 or more"))
			}
			wc, err := wf.parse()
			if err != nil {
				return withExit(exitUsage, err)
			}
			var progress io.Writer
			if !quiet {
				progress = cmd.ErrOrStderr()
			}
			logs, err := f.deployment(cmd.Context(), cmd)
			if err != nil {
				return withExit(exitUsage, err)
			}
			if len(logs) == 1 {
				return verifyOne(cmd, &logs[0], progress, wc, maxUncovered)
			}
			// Every instance's log of the deployment, each on its own; the exit status is the
			// worst one's.
			var worst error
			for i := range logs {
				fmt.Fprintf(cmd.OutOrStdout(), "== log %s (origin %s, checkpoints %s)\n", logs[i].log, logs[i].origin, logs[i].checkpoints)
				if err := verifyOne(cmd, &logs[i], progress, wc, maxUncovered); err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "log %s: %v\n", logs[i].log, err)
					if worst == nil || exitCode(err) == exitTampered || exitCode(worst) == exitIncomplete {
						worst = err
					}
				}
			}
			if worst != nil {
				return worst
			}
			fmt.Fprintf(cmd.OutOrStdout(), "all %d logs of the deployment verified\n", len(logs))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExit(exitUsage, err) })
	f.storeFlags(cmd)
	cmd.Flags().StringVar(&f.key, "key", "", "file holding the log's public (verifier) key, as written by audit keygen (required)")
	cmd.Flags().StringVar(&f.origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	cmd.Flags().StringVar(&f.checkpoints, "checkpoints", "", "directory of external checkpoints (the copy kept outside the database)")
	cmd.Flags().Int64Var(&maxUncovered, "max-uncovered", 0, "records that may be uncovered by a signed checkpoint before the exit status is 3 (a running gateway leaves up to checkpoint_every records or checkpoint_interval of them)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress lines")
	wf.flags(cmd)
	return cmd
}

// verifyOne is audit verify on the one log f names.
func verifyOne(cmd *cobra.Command, f *auditFlags, progress io.Writer, wc *witnessCheck, maxUncovered int64) error {
	rep, witnessed, err := verifyWitnessed(cmd.Context(), f, progress, wc)
	if err != nil {
		return withExit(exitUsage, err)
	}
	for _, line := range witnessed {
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	if f.db != "" {
		seg := f.db + sqlite.SegmentSuffix
		switch n, err := sqlite.SegmentBytes(f.db); {
		case err != nil:
			fmt.Fprintf(cmd.OutOrStdout(), "NOTE: the record segment %s could not be read (%v). This report covers the database only.\n", seg, err)
		case n > 0:
			fmt.Fprintf(cmd.OutOrStdout(), "NOTE: the record segment %s holds %d bytes of records not yet in the database: a running gateway adds them within %v; "+
				"a stopped one left them, and they are added when the gateway or a writable audit command next opens the database. This report covers the database only.\n",
				seg, n, sqlite.IndexDelay)
		}
	}
	if err := printReport(cmd.OutOrStdout(), rep); err != nil {
		return withExit(exitTampered, err)
	}
	if n := rep.Records - rep.Covered; n > maxUncovered {
		fmt.Fprintf(cmd.OutOrStdout(), "INCOMPLETE: records %d..%d (%d) are not covered by any signed checkpoint; at most %d may be (--max-uncovered)\n",
			rep.Covered, rep.Records-1, n, maxUncovered)
		return withExit(exitIncomplete, fmt.Errorf("the audit log is incomplete: %d records are not covered by a signed checkpoint (--max-uncovered %d); "+
			"if the gateway is stopped, it stopped without its final checkpoint or records were added meanwhile: review them, then `mcpguard audit accept`", n, maxUncovered))
	}
	return nil
}

func newAuditAccept() *cobra.Command {
	var f auditFlags
	var signingKey string
	var records int64
	cmd := &cobra.Command{
		Use:   "accept --records N --db FILE --signing-key KEY --checkpoints DIR",
		Short: "After review, sign a checkpoint over the records after the newest external checkpoint, so the gateway starts again",
		Long: "The gateway refuses to start when the audit database holds records that the newest checkpoint in the\n" +
			"checkpoint directory does not cover: after a crash, the records written since the last checkpoint;\n" +
			"but records added while the gateway was stopped look the same. Run `mcpguard audit verify`, review\n" +
			"the records it reports as not covered, then accept exactly that many with --records N. The whole log\n" +
			"is verified first; the checkpoint is written to the directory and the database, with a file\n" +
			"accepted-<size> beside it recording that an operator, not the gateway, signed these records.\n" +
			"Run it while the gateway is stopped.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if records <= 0 {
				return errors.New("--records N: the number of records you reviewed (audit verify lists them as not covered)")
			}
			if f.checkpoints == "" {
				return errors.New("--checkpoints DIR is required: it is what the gateway compares the database with")
			}
			signer, err := audit.LoadSigner(signingKey)
			if err != nil {
				return err
			}
			st, err := f.openWritable(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := audit.Verify(cmd.Context(), st, audit.VerifyOptions{Verifier: audit.SignerVerifier(signer), Origin: f.origin, CheckpointDir: f.checkpoints})
			if err != nil {
				return err
			}
			if !rep.OK() {
				if err := printReport(cmd.OutOrStdout(), rep); err != nil {
					return fmt.Errorf("nothing accepted: %w", err)
				}
			}
			t, err := audit.AcceptRecords(cmd.Context(), st, signer, audit.AcceptOptions{CheckpointDir: f.checkpoints, Origin: f.origin, Records: records})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "accepted records %d..%d: signed a checkpoint of %d records into %s\n", t.Size-records, t.Size-1, t.Size, f.checkpoints)
			return nil
		},
	}
	f.storeFlags(cmd)
	cmd.Flags().StringVar(&signingKey, "signing-key", "", "the log's signing key file (audit.signing_key_file)")
	cmd.Flags().StringVar(&f.checkpoints, "checkpoints", "", "the log's checkpoint directory (audit.checkpoint_dir)")
	cmd.Flags().StringVar(&f.origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	cmd.Flags().Int64Var(&records, "records", 0, "how many records after the newest external checkpoint you reviewed and accept (exactly)")
	_ = cmd.MarkFlagRequired("signing-key")
	_ = cmd.MarkFlagRequired("records")
	return cmd
}

// verifyAuditLog runs audit verify's check on the store, key and checkpoint directory f names,
// writing progress lines to progress unless it is nil. The report says whether anything was
// tampered with; the error, whether the check could run at all.
func verifyAuditLog(ctx context.Context, f *auditFlags, progress io.Writer) (*audit.Report, error) {
	rep, _, err := verifyWitnessed(ctx, f, progress, nil)
	return rep, err
}

// verifyWitnessed is verifyAuditLog that also requires, with wc, the witnesses' cosigned
// checkpoints (witnessCheck.collect): it returns a line per required witness saying what it
// cosigned, and reports a missing or inconsistent one as a problem.
func verifyWitnessed(ctx context.Context, f *auditFlags, progress io.Writer, wc *witnessCheck) (*audit.Report, []string, error) {
	v, err := f.verifier()
	if err != nil {
		return nil, nil, err
	}
	st, err := f.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	opts := audit.VerifyOptions{Verifier: v, Origin: f.origin, CheckpointDir: f.checkpoints}
	if progress != nil {
		opts.Progress = func(done, total int64) {
			if total > 0 {
				fmt.Fprintf(progress, "verified %d of %d records (%d%%)\n", done, total, done*100/max(total, 1))
			}
		}
	}
	var found *witnessed
	if wc != nil {
		if found, err = wc.collect(ctx, v, f.origin, f.checkpoints); err != nil {
			return nil, nil, err
		}
		opts.Extra = found.extra
	}
	rep, err := audit.Verify(ctx, st, opts)
	if err != nil || found == nil {
		return rep, nil, err
	}
	rep.Problems = append(rep.Problems, found.problems...)
	rep.Warnings = append(rep.Warnings, found.warnings...)
	return rep, found.lines, nil
}

func printReport(w io.Writer, rep *audit.Report) error {
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if rep.OK() {
		fmt.Fprintf(w, "OK: %d records, %d covered by signed checkpoints (%d in the database, %d external, newest external at %d), verified in %v\n",
			rep.Records, rep.Covered, rep.Checkpoints, rep.External, rep.NewestExternal, rep.Elapsed.Round(time.Millisecond))
		if rep.Pruned > 0 {
			fmt.Fprintf(w, "pruned: %d records' payloads were removed by retention, each covered by a retention record\n", rep.Pruned)
		}
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "TAMPERED: %s\n", p)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(w, "… and %d more problems\n", rep.Dropped)
	}
	first, _ := rep.First()
	n := len(rep.Problems) + rep.Dropped
	noun := "problems"
	if n == 1 {
		noun = "problem"
	}
	return fmt.Errorf("the audit log failed verification (%d %s); first: %s", n, noun, first)
}

func newAuditProof() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "proof SEQ --db FILE --key PUB",
		Short: "Print an inclusion proof of record SEQ against the first signed checkpoint covering it (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || seq < 0 {
				return fmt.Errorf("SEQ %q: want a record number (0 is the first)", args[0])
			}
			v, err := f.verifier()
			if err != nil {
				return err
			}
			st, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := audit.ProveInclusion(cmd.Context(), st, seq, v)
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), p)
		},
	}
	f.storeFlags(cmd)
	f.keyFlags(cmd)
	return cmd
}

func newAuditConsistency() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "consistency OLD NEW --db FILE --key PUB",
		Short: "Print a proof that the signed tree of OLD records is a prefix of the one of NEW records (JSON)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldSize, err1 := strconv.ParseInt(args[0], 10, 64)
			newSize, err2 := strconv.ParseInt(args[1], 10, 64)
			if err1 != nil || err2 != nil || oldSize < 0 || newSize < 0 {
				return fmt.Errorf("OLD and NEW must be checkpoint sizes (record counts)")
			}
			v, err := f.verifier()
			if err != nil {
				return err
			}
			st, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := audit.ProveConsistency(cmd.Context(), st, oldSize, newSize, v)
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), p)
		},
	}
	f.storeFlags(cmd)
	f.keyFlags(cmd)
	return cmd
}

func newAuditCheckProof() *cobra.Command {
	var key, origin string
	cmd := &cobra.Command{
		Use:   "check-proof FILE --key PUB",
		Short: "Check an inclusion or consistency proof with the public key alone (no database needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := readVerifier(key)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var probe map[string]json.RawMessage
			if err := json.Unmarshal(b, &probe); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if _, ok := probe["record"]; ok {
				var p audit.InclusionProof
				if err := json.Unmarshal(b, &p); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if err := audit.VerifyInclusion(&p, v, origin); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "OK: record %d is in the signed log\n", p.Seq)
				return nil
			}
			var p audit.ConsistencyProof
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := audit.VerifyConsistency(&p, v, origin); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "OK: the older signed tree is a prefix of the newer one")
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "file holding the log's public key")
	cmd.Flags().StringVar(&origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// queryFlags select records for search and export.
type queryFlags struct {
	principal, tool, decision, kind string
	since, until                    string
	limit                           int
}

func (q *queryFlags) add(cmd *cobra.Command, withFilters bool) {
	if withFilters {
		cmd.Flags().StringVar(&q.principal, "principal", "", "only this principal")
		cmd.Flags().StringVar(&q.tool, "tool", "", "only this tool (as exposed, e.g. fin.transfer)")
		cmd.Flags().StringVar(&q.decision, "decision", "", "only this decision (allow, deny)")
		cmd.Flags().StringVar(&q.kind, "kind", "", "only this kind (call, outcome, auth_failure, …)")
		cmd.Flags().IntVar(&q.limit, "limit", 100, "at most this many records (0: all)")
	}
	cmd.Flags().StringVar(&q.since, "since", "", "from this time: RFC 3339, or a duration ago (24h)")
	cmd.Flags().StringVar(&q.until, "until", "", "before this time: RFC 3339, or a duration ago")
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-21T09:00:00Z) or a duration (24h)", s)
	}
	return t, nil
}

func (q *queryFlags) query() (store.Query, error) {
	now := time.Now()
	since, err := parseWhen(q.since, now)
	if err != nil {
		return store.Query{}, fmt.Errorf("--since: %w", err)
	}
	until, err := parseWhen(q.until, now)
	if err != nil {
		return store.Query{}, fmt.Errorf("--until: %w", err)
	}
	return store.Query{Principal: q.principal, Tool: q.tool, Decision: q.decision, Kind: q.kind,
		Since: since, Until: until, AfterSeq: -1, Limit: q.limit}, nil
}

func newAuditSearch() *cobra.Command {
	var f auditFlags
	var q queryFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search --db FILE [--principal P] [--tool T] [--decision D] [--since T] [--until T]",
		Short: "List audit records by principal, tool, decision and time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			query, err := q.query()
			if err != nil {
				return err
			}
			st, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			w := cmd.OutOrStdout()
			return st.Search(cmd.Context(), query, func(r *store.Record) error {
				if asJSON {
					_, err := fmt.Fprintf(w, "%s\n", r.Data)
					return err
				}
				rec, err := audit.ParseRecord(r.Data)
				if err != nil {
					return fmt.Errorf("record %d: %w (run audit verify)", r.Seq, err)
				}
				_, err = fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rec.Seq, rec.Time.Format(time.RFC3339Nano),
					rec.Kind, orDash(rec.Principal), orDash(rec.Tool), orDash(rec.Decision), orDash(rec.Rule), orDash(string(rec.Arguments)))
				return err
			})
		},
	}
	f.storeFlags(cmd)
	q.add(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each record's canonical JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAuditExport() *cobra.Command {
	var f auditFlags
	var q queryFlags
	var format string
	cmd := &cobra.Command{
		Use:   "export --db FILE [--since T] [--until T] --format jsonl|csv",
		Short: "Write audit records in a time window as JSON Lines (canonical records) or CSV",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" && format != "csv" {
				return fmt.Errorf("--format %q: want jsonl or csv", format)
			}
			query, err := q.query()
			if err != nil {
				return err
			}
			st, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			w := cmd.OutOrStdout()
			if format == "jsonl" {
				return st.Search(cmd.Context(), query, func(r *store.Record) error {
					_, err := fmt.Fprintf(w, "%s\n", r.Data)
					return err
				})
			}
			cw := csv.NewWriter(w)
			cw.Write(csvHeader)
			err = st.Search(cmd.Context(), query, func(r *store.Record) error {
				rec, err := audit.ParseRecord(r.Data)
				if err != nil {
					return fmt.Errorf("record %d: %w (run audit verify)", r.Seq, err)
				}
				return cw.Write(csvRow(rec))
			})
			cw.Flush()
			if err != nil {
				return err
			}
			return cw.Error()
		},
	}
	f.storeFlags(cmd)
	q.add(cmd, false)
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	return cmd
}

var csvHeader = []string{"seq", "time", "kind", "request_id", "trace_id", "principal", "roles", "auth_method", "client_ip",
	"era", "method", "upstream", "tool", "decision", "rule", "reasons", "outcome", "error_code", "duration_us",
	"request_bytes", "response_bytes", "arguments"}

func csvRow(r *audit.Record) []string {
	var status, code string
	if r.Outcome != nil {
		status = r.Outcome.Status
		if r.Outcome.ErrorCode != 0 {
			code = strconv.Itoa(r.Outcome.ErrorCode)
		}
	}
	return csvSafe([]string{strconv.FormatInt(r.Seq, 10), r.Time.Format(time.RFC3339Nano), string(r.Kind), r.RequestID, r.TraceID,
		r.Principal, strings.Join(r.Roles, " "), r.AuthMethod, r.ClientIP, r.Era, r.Method, r.Upstream, r.Tool,
		r.Decision, r.Rule, strings.Join(r.Reasons, "; "), status, code, strconv.FormatInt(r.DurationMicros, 10),
		strconv.FormatInt(r.RequestBytes, 10), strconv.FormatInt(r.ResponseBytes, 10), string(r.Arguments)})
}

// csvSafe keeps a spreadsheet from reading a cell as a formula (a principal or tool name is
// chosen by whoever is audited).
func csvSafe(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			if _, err := strconv.ParseFloat(c, 64); err != nil {
				cells[i] = "'" + c
			}
		}
	}
	return cells
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
