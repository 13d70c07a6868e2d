package authn

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"
)

// cheapArgon2 keeps tests fast; production uses DefaultArgon2Params.
var cheapArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const goodPassword = "correct horse battery staple"

type opFixture struct {
	ops   *Operators
	store *MemoryStore
	clk   *fakeClock
	totp  string // the enrolled secret
}

func newOpFixture(t *testing.T) *opFixture {
	t.Helper()
	ctx := context.Background()
	f := &opFixture{store: NewMemoryStore(), clk: newClock()}
	ops, err := NewOperators(ctx, f.store, f.store, &OperatorsOptions{
		Hasher: NewPasswordHasher(&PasswordHasherOptions{Params: cheapArgon2}),
		Now:    f.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ops = ops
	if err := ops.Create(ctx, "alice", goodPassword, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	e, err := ops.BeginEnrollment(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.totp = e.Secret.Reveal()
	if err := ops.ConfirmEnrollment(ctx, "alice", f.code(t)); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(30 * time.Second) // the enrolment consumed this step's code
	return f
}

func (f *opFixture) code(t *testing.T) string {
	t.Helper()
	c, err := totp.GenerateCode(f.totp, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wrongCode(c string) string {
	b := []byte(c)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestOperatorLoginNeedsPasswordAndCurrentTOTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOpFixture(t)
	code := f.code(t)

	tests := []struct {
		name, user, password, code string
		want                       Reason
	}{
		{"wrong password", "alice", "wrong password!!", code, ReasonBadPassword},
		{"unknown operator", "mallory", goodPassword, code, ReasonBadPassword},
		{"no code", "alice", goodPassword, "", ReasonBadTOTP},
		{"wrong code", "alice", goodPassword, wrongCode(code), ReasonBadTOTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.ops.Login(ctx, tt.user, tt.password, tt.code); ReasonOf(err) != tt.want {
				t.Errorf("reason %q (%v), want %q", ReasonOf(err), err, tt.want)
			}
		})
	}
	_ = f.store.ResetLoginFailures(ctx, "alice")

	token, p, err := f.ops.Login(ctx, "alice", goodPassword, code)
	if err != nil {
		t.Fatalf("login with password and current code: %v", err)
	}
	if p.Subject != "alice" || p.Method != MethodOperator || !p.HasRole("admin") || !p.MFA {
		t.Errorf("principal %+v, want operator alice, with MFA (password and TOTP)", p)
	}
	if got, err := f.ops.Sessions().Authenticate(ctx, token.Reveal()); err != nil || !got.MFA {
		t.Errorf("session: %+v %v, want it to keep MFA", got, err)
	}

	// The same code again, still within its step: a replay.
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, code); ReasonOf(err) != ReasonBadTOTP || !strings.Contains(err.Error(), "already used") {
		t.Errorf("replayed code: %v", err)
	}
	// A code from the previous step, still inside the skew window, is also spent.
	f.clk.Advance(30 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, code); ReasonOf(err) != ReasonBadTOTP {
		t.Errorf("older code after a newer one was used: %v", err)
	}
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t)); err != nil {
		t.Errorf("the next step's code: %v", err)
	}
}

func TestOperatorLockoutWithBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOpFixture(t)
	for i := range 5 {
		if _, _, err := f.ops.Login(ctx, "alice", "wrong password!!", f.code(t)); ReasonOf(err) != ReasonBadPassword {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	login := func() error {
		_, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t))
		return err
	}
	if err := login(); ReasonOf(err) != ReasonLocked {
		t.Fatalf("correct credentials after five failures: %v, want locked", err)
	}
	f.clk.Advance(61 * time.Second) // the first lockout (1 min) is over
	if _, _, err := f.ops.Login(ctx, "alice", "wrong password!!", f.code(t)); ReasonOf(err) != ReasonBadPassword {
		t.Fatalf("sixth failure: %v", err)
	}
	f.clk.Advance(61 * time.Second) // the second lockout lasts 2 min
	if err := login(); ReasonOf(err) != ReasonLocked {
		t.Fatalf("one minute into a two-minute lockout: %v, want locked", err)
	}
	f.clk.Advance(60 * time.Second)
	if err := login(); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if fl, _ := f.store.LoginFailures(ctx, "alice"); fl.Count != 0 {
		t.Errorf("failures after a successful login: %d, want 0", fl.Count)
	}
}

func TestOperatorLockoutCeiling(t *testing.T) {
	t.Parallel()
	o := &Operators{maxFailures: 5, base: time.Minute, max: time.Hour}
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		count int
		want  time.Duration
	}{{4, 0}, {5, time.Minute}, {6, 2 * time.Minute}, {8, 8 * time.Minute}, {12, time.Hour}, {1000, time.Hour}} {
		got := o.lockedUntil(LoginFailures{Count: tt.count, Last: last})
		if tt.want == 0 && !got.IsZero() || tt.want != 0 && got.Sub(last) != tt.want {
			t.Errorf("%d failures: locked until %v, want +%v", tt.count, got, tt.want)
		}
	}
}

func TestOperatorWithoutTOTPCannotLogIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOpFixture(t)
	if err := f.ops.Create(ctx, "bob", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ops.Login(ctx, "bob", goodPassword, "123456"); ReasonOf(err) != ReasonMFARequired {
		t.Errorf("login without enrolment: %v", err)
	}
	e, err := f.ops.BeginEnrollment(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/mcpguard:bob?") || !strings.Contains(e.URI, "issuer=mcpguard") {
		t.Errorf("otpauth URI %q", e.URI)
	}
	png, err := e.QRCode(256)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("QR code is not a PNG: %v", err)
	}
	if err := f.ops.ConfirmEnrollment(ctx, "bob", "000000"); err == nil {
		t.Error("enrolment confirmed with a wrong code")
	}
	if _, err := f.ops.BeginEnrollment(ctx, "alice"); err == nil {
		t.Error("an enrolled operator started a second enrolment without a reset")
	}
	if err := f.ops.ResetMFA(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t)); ReasonOf(err) != ReasonMFARequired {
		t.Errorf("login after MFA reset: %v", err)
	}
	list, err := f.ops.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, op := range list {
		names = append(names, op.Name)
		if op.PasswordHash != "" || op.TOTPSecret != "" || op.PendingTOTP != "" {
			t.Errorf("List exposes secrets of %s", op.Name)
		}
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if err := f.ops.Create(ctx, "bob", goodPassword, nil); !errors.Is(err, ErrExists) {
		t.Errorf("creating bob twice: %v", err)
	}
	if err := f.ops.Create(ctx, "Carol Smith", goodPassword, nil); err == nil {
		t.Error("a name with spaces and capitals was accepted")
	}
	if err := f.ops.Create(ctx, "carol", "short", nil); err == nil {
		t.Error("a short password was accepted")
	}
}

func TestOperatorSessionsExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		use  func(f *opFixture, token string) error // returns the error of the request that must fail
		want Reason
	}{
		{"absolute limit of 8 h despite activity", func(f *opFixture, token string) error {
			for range 8 * 60 / 10 {
				f.clk.Advance(10 * time.Minute)
				if _, err := f.ops.Sessions().Authenticate(ctx, token); err != nil {
					return err
				}
			}
			return nil
		}, ReasonSessionExpired},
		{"idle limit", func(f *opFixture, token string) error {
			f.clk.Advance(20 * time.Minute)
			if _, err := f.ops.Sessions().Authenticate(ctx, token); err != nil {
				return errors.New("ended before the idle limit: " + err.Error())
			}
			f.clk.Advance(31 * time.Minute)
			_, err := f.ops.Sessions().Authenticate(ctx, token)
			return err
		}, ReasonSessionExpired},
		{"logout", func(f *opFixture, token string) error {
			if err := f.ops.Sessions().Logout(ctx, token); err != nil {
				return err
			}
			_, err := f.ops.Sessions().Authenticate(ctx, token)
			return err
		}, ReasonUnknownSession},
		{"operator disabled", func(f *opFixture, token string) error {
			if err := f.ops.Disable(ctx, "alice"); err != nil {
				return err
			}
			_, err := f.ops.Sessions().Authenticate(ctx, token)
			return err
		}, ReasonUnknownSession},
		{"password changed", func(f *opFixture, token string) error {
			if err := f.ops.SetPassword(ctx, "alice", "another long passphrase"); err != nil {
				return err
			}
			_, err := f.ops.Sessions().Authenticate(ctx, token)
			return err
		}, ReasonUnknownSession},
		{"not a session token", func(f *opFixture, token string) error {
			_, err := f.ops.Sessions().Authenticate(ctx, "mcpg_"+token)
			return err
		}, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newOpFixture(t)
			token, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.use(f, token.Reveal()); ReasonOf(err) != tt.want {
				t.Errorf("reason %q (%v), want %q", ReasonOf(err), err, tt.want)
			}
		})
	}
}

func TestDisabledOperatorCannotLogIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOpFixture(t)
	if err := f.ops.Disable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t)); ReasonOf(err) != ReasonDisabled {
		t.Errorf("disabled operator: %v", err)
	}
	if err := f.ops.Enable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t)); err != nil {
		t.Errorf("re-enabled operator: %v", err)
	}
}
