package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/witness"
)

func newWitnessCmd() *cobra.Command {
	var listen, keyFile, stateDir, origin string
	var logKeys []string
	cmd := &cobra.Command{
		Use:   "witness --listen HOST:PORT --key-file FILE --state DIR --log-key VERIFIER[,VERIFIER...]",
		Short: "Run a witness that cosigns the audit log's checkpoints only while the log stays append-only",
		Long: "Serves the C2SP tlog-witness protocol (docs/audit.md, \"Witnesses\"): POST /add-checkpoint\n" +
			"cosigns a checkpoint signed by one of the --log-key keys only if it extends the last checkpoint\n" +
			"this witness cosigned for the log (a consistency proof), and GET /<origin hash>/checkpoint\n" +
			"returns that checkpoint, which `mcpguard audit verify --witness-url` asks for. The state\n" +
			"directory holds what it cosigned and must never be lost or rolled back: run the witness where\n" +
			"the gateway's operators cannot reach it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			signer, err := witness.LoadCosigner(keyFile, nil)
			if err != nil {
				return err
			}
			var vs []note.Verifier
			for _, k := range logKeys {
				v, err := readLogKey(k)
				if err != nil {
					return fmt.Errorf("--log-key: %w", err)
				}
				vs = append(vs, v)
			}
			if len(vs) == 0 {
				return errors.New("--log-key: name at least one key of the log (its .pub file from mcpguard audit keygen, or the key itself)")
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			w, err := witness.New(stateDir, signer, []witness.Log{{Origin: origin, Verifiers: vs}}, &witness.Options{Logger: logger})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{
				Handler:           w.Handler(),
				ReadHeaderTimeout: 5 * time.Second,
				ReadTimeout:       10 * time.Second,
				WriteTimeout:      10 * time.Second,
				IdleTimeout:       time.Minute,
				MaxHeaderBytes:    8 << 10,
				ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				_ = srv.Close()
			}()
			fmt.Fprintf(cmd.ErrOrStderr(), "mcpguard witness %s: cosigning %q at http://%s\n", signer.Name(), origin, ln.Addr())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7380", "address to serve on (host:port)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "the witness's signing key (mcpguard witness keygen), mode 0600")
	cmd.Flags().StringVar(&stateDir, "state", "", "directory of the witness's state: the newest checkpoint it cosigned per log")
	cmd.Flags().StringSliceVar(&logKeys, "log-key", nil, "the log's verifier key: its .pub file or the key itself (repeat, or separate with commas, during a key change)")
	cmd.Flags().StringVar(&origin, "origin", audit.DefaultOrigin, "the log's name in its checkpoints")
	_ = cmd.MarkFlagRequired("key-file")
	_ = cmd.MarkFlagRequired("state")
	_ = cmd.MarkFlagRequired("log-key")
	cmd.AddCommand(newWitnessKeygen())
	return cmd
}

// readLogKey reads a log's verifier key given as the key itself or as a file holding it.
func readLogKey(s string) (note.Verifier, error) {
	if v, err := note.NewVerifier(s); err == nil {
		return v, nil
	}
	return readVerifier(s)
}

func newWitnessKeygen() *cobra.Command {
	var name, dir string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME [--dir DIR]",
		Short: "Create a witness's Ed25519 cosigning key (NAME.key, mode 0600) and its verifier key (NAME.pub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.ContainsAny(name, `/\`) {
				return fmt.Errorf("--name %q: the name also names the key files, so it must not contain a slash", name)
			}
			skey, vkey, err := witness.GenerateKey(name)
			if err != nil {
				return err
			}
			priv, pub := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
			f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write signing key: %w", err)
			}
			if _, err := f.WriteString(skey + "\n"); err != nil {
				f.Close()
				return fmt.Errorf("write signing key: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write signing key: %w", err)
			}
			if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
				return fmt.Errorf("write verifier key: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key:  %s (for mcpguard witness --key-file only; keep it on the witness's machine)\nverifier key: %s\n%s\n", priv, pub, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "key name, in every cosignature (no spaces, '+' or slashes), e.g. witness-1.example.com")
	cmd.Flags().StringVar(&dir, "dir", ".", "directory for the two key files")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// witnessFlags are audit verify's witness flags.
type witnessFlags struct {
	keys, urls []string
	timeout    time.Duration
}

func (wf *witnessFlags) flags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&wf.keys, "witness", nil, "require a checkpoint cosigned by this witness, and that the log extends the newest one: its verifier key or a file holding it (repeatable)")
	cmd.Flags().StringArrayVar(&wf.urls, "witness-url", nil, "ask the witness served at this URL for the newest checkpoint it cosigned (repeatable); without it only the cosigned copies in --checkpoints are read")
	cmd.Flags().DurationVar(&wf.timeout, "witness-timeout", 10*time.Second, "how long to wait for each --witness-url")
}

// witnessCheck is what audit verify requires of witnesses.
type witnessCheck struct {
	keys    []note.Verifier
	urls    []string
	timeout time.Duration
}

// parse checks the flags; nil when no witness is required.
func (wf *witnessFlags) parse() (*witnessCheck, error) {
	if len(wf.keys) == 0 {
		if len(wf.urls) > 0 {
			return nil, errors.New("--witness-url needs --witness KEY: the witness's key is what checks its answer")
		}
		return nil, nil
	}
	wc := &witnessCheck{timeout: wf.timeout}
	for _, k := range wf.keys {
		v, err := witness.NewVerifier(k)
		if err != nil {
			b, rerr := os.ReadFile(k)
			if rerr != nil {
				return nil, fmt.Errorf("--witness %s: neither a witness verifier key nor a readable file: %w", k, rerr)
			}
			if v, err = witness.NewVerifier(strings.TrimSpace(string(b))); err != nil {
				return nil, fmt.Errorf("--witness %s: %w", k, err)
			}
		}
		wc.keys = append(wc.keys, v)
	}
	for _, raw := range wf.urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--witness-url %q: want an http(s) URL", raw)
		}
		wc.urls = append(wc.urls, raw)
	}
	if wc.timeout <= 0 {
		return nil, errors.New("--witness-timeout must be positive")
	}
	return wc, nil
}

// witnessed is what collect found: the cosigned checkpoints for audit.Verify to check against
// the records, a line per required witness, and the problems and warnings to report.
type witnessed struct {
	extra    []audit.ExternalCheckpoint
	lines    []string
	problems []audit.Problem
	warnings []string
}

// collect gathers the checkpoints the witnesses cosigned: from each --witness-url (what the
// witness itself holds, out of the operator's reach) and from the checkpoint directory dir (the
// copies the gateway kept, which an insider can delete). Every one must carry the log's
// signature; each is then compared with the records by audit.Verify, so a log truncated below,
// or diverging from, any cosigned checkpoint fails. A required witness none of whose
// cosignatures is found is a problem too. An unreachable witness is an error (exit 2).
func (wc *witnessCheck) collect(ctx context.Context, logKey note.Verifier, origin, dir string) (*witnessed, error) {
	type source struct {
		what string
		msg  []byte
		url  bool
	}
	var sources []source
	found := &witnessed{}
	hc := &http.Client{Timeout: wc.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range wc.urls {
		msg, err := witness.FetchCheckpoint(ctx, hc, u, origin)
		if err != nil {
			return nil, err
		}
		if msg == nil {
			found.lines = append(found.lines, fmt.Sprintf("witness at %s: holds no checkpoint of %q", u, origin))
			continue
		}
		sources = append(sources, source{what: "the checkpoint the witness at " + u + " cosigned", msg: msg, url: true})
	}
	if dir != "" {
		files, err := witness.ReadWitnessedDir(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			sources = append(sources, source{what: "cosigned checkpoint file " + f.Path, msg: f.Note})
		}
	}
	if len(wc.urls) == 0 {
		found.warnings = append(found.warnings, "no --witness-url: only the cosigned copies in the checkpoint directory were read, and whoever can delete checkpoint files can delete them too")
	}
	type best struct {
		size int64
		from string
	}
	newest := make([]*best, len(wc.keys))
	for _, s := range sources {
		t, by, err := witness.Cosigners(s.msg, logKey, wc.keys)
		if err != nil {
			found.problems = append(found.problems, audit.Problem{Seq: -1, What: fmt.Sprintf("%s: %v", s.what, err)})
			continue
		}
		if s.url && len(by) == 0 {
			found.problems = append(found.problems, audit.Problem{Seq: -1, What: fmt.Sprintf("%s carries no valid cosignature of any --witness key", s.what)})
		}
		found.extra = append(found.extra, audit.ExternalCheckpoint{Path: s.what, Note: s.msg})
		for _, w := range by {
			i := slices.Index(wc.keys, w)
			if newest[i] == nil || t.Size > newest[i].size {
				newest[i] = &best{size: t.Size, from: s.what}
			}
		}
	}
	for i, k := range wc.keys {
		if newest[i] == nil {
			found.problems = append(found.problems, audit.Problem{Seq: -1, What: fmt.Sprintf(
				"witness %s: no checkpoint of this log cosigned by it was found (asked: %d witness URLs and the checkpoint directory), and --witness requires one", k.Name(), len(wc.urls))})
			continue
		}
		found.lines = append(found.lines, fmt.Sprintf("witness %s: its newest cosigned checkpoint covers %d records (%s)", k.Name(), newest[i].size, newest[i].from))
	}
	return found, nil
}
