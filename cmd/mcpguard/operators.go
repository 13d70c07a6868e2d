package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// maxInputLine bounds one line read from standard input (a password is at most 1024 bytes).
const maxInputLine = 2048

// qrPNGSize is the side, in pixels, of the PNG written by enroll-mfa --qr.
const qrPNGSize = 320

func newOperatorsCmd() *cobra.Command { return newOperatorsCmdWith(adminEnv{}) }

func newOperatorsCmdWith(env adminEnv) *cobra.Command {
	var cfgPath string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "operators",
		Short: "Manage operator accounts (password + TOTP) for the admin API, the CLI and the console",
		Long:  "Manage operator accounts (password + TOTP) for the admin API, the CLI and the console.\n\n" + authHelp,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "the gateway's configuration file (names api_keys_database)")
	_ = cmd.MarkPersistentFlagRequired("config")

	// simple runs one change on a named operator, as the authenticated actor, recorded as act.
	simple := func(use, short, done, act string, change func(ops *authn.Operators, ctx context.Context, name string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " --config FILE NAME", Short: short, Long: short + ".\n\n" + authHelp, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				id, actor, err := openAsActor(ctx, cfgPath, env)
				if err != nil {
					return err
				}
				defer id.Close()
				e := journal.NewEntry(act, actor, id.env.now())
				e.Target.Operator = args[0]
				if err := id.act(ctx, e, func(_ keystore.Tx, ops *authn.Operators) error {
					return change(ops, ctx, args[0])
				}); err != nil {
					return explainOperatorErr(err, args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), done+"\n", args[0])
				return nil
			},
		}
	}

	var roles string
	create := &cobra.Command{
		Use:   "create --config FILE NAME --roles R1,R2 [--password-stdin]",
		Short: "Create an operator; the password is asked twice without echo (or read from standard input)",
		Long: "Create an operator; the password is asked twice without echo (or read from standard input).\n" +
			"The first operator of a new identities database is created without authentication (the bootstrap).\n\n" + authHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := newPrompter(cmd, passwordStdin)
			password, err := in.secret("Password for " + args[0] + ": ")
			if err != nil {
				return err
			}
			if err := authn.CheckPasswordPolicy(password); err != nil {
				return err
			}
			if in.terminal() {
				again, err := in.secret("Repeat the password: ")
				if err != nil {
					return err
				}
				if again != password {
					return errors.New("the two passwords differ: nothing was created")
				}
			}
			ctx := cmd.Context()
			id, actor, err := openAsActor(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			list := splitRoles(roles)
			e := journal.NewEntry(journal.ActOperatorCreate, actor, id.env.now())
			e.Target = journal.Target{Operator: args[0], Roles: list}
			if err := id.act(ctx, e, func(_ keystore.Tx, ops *authn.Operators) error {
				return ops.Create(ctx, args[0], password, list)
			}); err != nil {
				if errors.Is(err, authn.ErrExists) {
					return fmt.Errorf("operator %s already exists (see operators list)", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created operator %s (roles %s); next: mcpguard operators enroll-mfa --config %s %s\n",
				args[0], strings.Join(list, ","), cfgPath, args[0])
			return nil
		},
	}
	create.Flags().StringVar(&roles, "roles", "", "comma-separated roles of the operator")

	var qrFile string
	var noTerminalQR bool
	enroll := &cobra.Command{
		Use:   "enroll-mfa --config FILE NAME [--qr FILE] [--password-stdin]",
		Short: "Enrol an authenticator app: prints the otpauth URI and a QR code, then asks for a current code",
		Long: `Creates a TOTP secret for the operator and shows it as an otpauth:// URI, as a QR code drawn
in the terminal (light modules as blocks: it reads as a normal code on a dark background) and,
with --qr, as a PNG file (mode 0600). Scan it with an authenticator app and type the code the app
shows: the enrolment becomes active only then. The URI, the QR code and the file contain the
secret: do not keep them.

Who enrols: the operator themselves, proving their password (asked without echo, or the first
line of standard input with --password-stdin; a wrong password counts towards the lockout like a
failed login), or any operator whose session token is in ` + operatorTokenEnv + `. The
confirmed enrolment is recorded in the audit log with that actor.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			id, err := openIdentities(ctx, cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			in := newPrompter(cmd, passwordStdin)
			actor, err := id.enrolmentActor(ctx, in, name)
			if err != nil {
				return err
			}
			e, err := id.ops.BeginEnrollment(ctx, name)
			if err != nil {
				return explainOperatorErr(err, name)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, e.URI)
			if qrFile != "" {
				png, err := e.QRCode(qrPNGSize)
				if err != nil {
					return err
				}
				if err := writePrivateFile(qrFile, png); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "QR code written to %s: delete it once scanned.\n", qrFile)
			}
			if !noTerminalQR {
				if err := drawQR(out, e.URI); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "Secret for manual entry: %s\n", e.Secret.Reveal())
			const attempts = 3
			for i := 1; ; i++ {
				code, err := in.line("Code from the authenticator app: ")
				if err != nil {
					return fmt.Errorf("enrolment of %s not confirmed: %w; run enroll-mfa again", name, err)
				}
				act := journal.NewEntry(journal.ActOperatorEnrollMFA, actor, id.env.now())
				act.Target.Operator = name
				err = id.keys.Act(ctx, act, id.store, func(tx keystore.Tx) error {
					return id.ops.WithStores(tx.Operators, tx.Operators).ConfirmEnrollment(ctx, name, code)
				})
				if err == nil {
					break
				}
				if i == attempts {
					act.Refuse(string(authn.ReasonBadTOTP))
					if rerr := id.keys.Record(ctx, act); rerr != nil {
						err = errors.Join(err, fmt.Errorf("recording the refusal: %w", rerr))
					}
					return fmt.Errorf("enrolment not confirmed: %w; run enroll-mfa again (a new secret replaces this one)", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%v; try again with the app's current code\n", err)
			}
			fmt.Fprintf(out, "TOTP enrolled for %s: they log in with their password and a code from the app.\n", name)
			return nil
		},
	}
	enroll.Flags().StringVar(&qrFile, "qr", "", "also write the QR code to this PNG file (contains the secret)")
	enroll.Flags().BoolVar(&noTerminalQR, "no-terminal-qr", false, "do not draw the QR code in the terminal")

	resetMFA := simple("reset-mfa", "Remove an operator's TOTP and end their sessions; they must enrol again to log in",
		"TOTP removed for %s and their sessions ended; they cannot log in until enroll-mfa is run again",
		journal.ActOperatorResetMFA, (*authn.Operators).ResetMFA)
	disable := simple("disable", "Disable an operator: no login, and their sessions end at once",
		"disabled %s and ended their sessions", journal.ActOperatorDisable, (*authn.Operators).Disable)
	enable := simple("enable", "Let a disabled operator log in again", "enabled %s", journal.ActOperatorEnable, (*authn.Operators).Enable)

	list := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List operators: name, roles, MFA state, status, recent login failures, created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := openIdentities(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			st := id.store
			all, err := st.ListOperators(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES\tMFA\tSTATUS\tFAILURES\tCREATED")
			for _, op := range all {
				mfa := "none"
				switch {
				case op.TOTPSecret != "":
					mfa = "enrolled"
				case op.PendingTOTP != "":
					mfa = "pending"
				}
				status := "active"
				if op.Disabled {
					status = "disabled"
				}
				f, err := st.LoginFailures(cmd.Context(), op.Name)
				if err != nil {
					return err
				}
				failures := "0"
				if f.Count > 0 {
					failures = fmt.Sprintf("%d (last %s)", f.Count, f.Last.Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", op.Name, orDash(strings.Join(op.Roles, ",")), mfa, status, failures, op.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}

	login := &cobra.Command{
		Use:   "login --config FILE NAME [--password-stdin]",
		Short: "Log in with password and a current TOTP code; prints a session token once",
		Long: `Checks the password (asked without echo, or the first line of standard input with
--password-stdin) and a current code from the authenticator app (the next line), and prints a
session token (mcps_…) on standard output. The token is a bearer credential for the admin API:
it ends 8 hours after login, after 30 minutes without use, on logout, or when the operator is
disabled or has TOTP reset. Every refusal gets the same message.

Every login, refused or not, is recorded in the audit log (act operator.login) with the reason of
a refusal (bad_password, bad_totp, locked, disabled, mfa_not_enrolled) — never the password or
the code. Use the token for the commands that change state:

  export ` + operatorTokenEnv + `=$(mcpguard operators login --config FILE NAME)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			in := newPrompter(cmd, passwordStdin)
			password, err := in.secret("Password for " + name + ": ")
			if err != nil {
				return err
			}
			code, err := in.line("Code from the authenticator app: ")
			if err != nil {
				return err
			}
			id, err := openIdentities(cmd.Context(), cfgPath, env)
			if err != nil {
				return err
			}
			defer id.Close()
			token, p, err := id.login(cmd.Context(), name, password, code)
			if err != nil {
				if authn.ReasonOf(err) == "" || authn.ReasonOf(err) == authn.ReasonStore {
					return err
				}
				return errors.New("login refused: the name, password or code is wrong, or the account is locked or disabled")
			}
			fmt.Fprintln(cmd.OutOrStdout(), token.Reveal())
			fmt.Fprintf(cmd.ErrOrStderr(), "session for %s (roles %s) until %s at the latest. It is shown only now.\n",
				p.Subject, orDash(strings.Join(p.Roles, ",")), p.Expires.Format(time.RFC3339))
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, login, enroll} {
		c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	}
	cmd.AddCommand(create, enroll, resetMFA, list, disable, enable, login)
	return cmd
}

func splitRoles(s string) []string {
	var list []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			list = append(list, r)
		}
	}
	return list
}

func explainOperatorErr(err error, name string) error {
	if errors.Is(err, authn.ErrNotFound) {
		return fmt.Errorf("no operator %q (see operators list)", name)
	}
	return err
}

// writePrivateFile writes data to path readable by its owner only.
func writePrivateFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write QR code: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write QR code: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write QR code %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write QR code %s: %w", path, err)
	}
	return nil
}

// prompter reads passwords and codes: from the terminal (passwords without echo, prompts on
// standard error) or, when not a terminal, as lines of standard input.
type prompter struct {
	in       io.Reader
	prompt   io.Writer
	fromLine bool // --password-stdin
	r        *bufio.Reader
}

func newPrompter(cmd *cobra.Command, passwordStdin bool) *prompter {
	return &prompter{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr(), fromLine: passwordStdin}
}

func (p *prompter) terminalFD() (int, bool) {
	f, ok := p.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// terminal reports whether passwords are typed at a terminal (not --password-stdin).
func (p *prompter) terminal() bool {
	_, ok := p.terminalFD()
	return ok && !p.fromLine
}

// secret reads a password: without echo from the terminal, or a line with --password-stdin.
func (p *prompter) secret(prompt string) (string, error) {
	if p.fromLine {
		s, err := p.readLine()
		if err != nil {
			return "", fmt.Errorf("--password-stdin: %w", err)
		}
		return s, nil
	}
	fd, ok := p.terminalFD()
	if !ok {
		return "", errors.New("standard input is not a terminal: pass --password-stdin and write the password as its first line")
	}
	fmt.Fprint(p.prompt, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(p.prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(b) > maxInputLine {
		return "", fmt.Errorf("password is longer than %d bytes", maxInputLine)
	}
	return string(b), nil
}

// line prompts (on standard error) and reads one line of standard input.
func (p *prompter) line(prompt string) (string, error) {
	fmt.Fprint(p.prompt, prompt)
	s, err := p.readLine()
	if err != nil {
		return "", fmt.Errorf("read code: %w", err)
	}
	return strings.TrimSpace(s), nil
}

func (p *prompter) readLine() (string, error) {
	if p.r == nil {
		p.r = bufio.NewReaderSize(p.in, maxInputLine)
	}
	b, err := p.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("line longer than %d bytes", maxInputLine)
	case errors.Is(err, io.EOF) && len(b) == 0:
		return "", errors.New("no input (end of file)")
	case err != nil && !errors.Is(err, io.EOF):
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// qrQuiet is the light margin around a terminal QR code, in modules (the standard's minimum).
const qrQuiet = 4

// drawQR draws content as a QR code with Unicode half blocks, two module rows per text line.
// Light modules and the margin are drawn, dark ones left blank, so that on the usual dark
// terminal background it scans as a dark-on-light code.
func drawQR(w io.Writer, content string) error {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("TOTP QR code: %w", err)
	}
	b := code.Bounds()
	light := func(x, y int) bool {
		if x < b.Min.X-qrQuiet || x >= b.Max.X+qrQuiet || y < b.Min.Y-qrQuiet || y >= b.Max.Y+qrQuiet {
			return false // outside the margin: terminal background
		}
		if x < b.Min.X || x >= b.Max.X || y < b.Min.Y || y >= b.Max.Y {
			return true // the margin
		}
		return colorLight(code.At(x, y))
	}
	var buf bytes.Buffer
	for y := b.Min.Y - qrQuiet; y < b.Max.Y+qrQuiet; y += 2 {
		for x := b.Min.X - qrQuiet; x < b.Max.X+qrQuiet; x++ {
			switch top, bottom := light(x, y), light(x, y+1); {
			case top && bottom:
				buf.WriteString("█")
			case top:
				buf.WriteString("▀")
			case bottom:
				buf.WriteString("▄")
			default:
				buf.WriteByte(' ')
			}
		}
		buf.WriteByte('\n')
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func colorLight(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r+g+b > 3*0x7fff
}
