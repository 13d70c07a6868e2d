package keystore

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/mcpguard/mcpguard/internal/authn"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// cheapArgon2 keeps tests fast; production uses authn.DefaultArgon2Params.
var cheapArgon2 = authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const password = "correct horse battery staple"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	path   string
	store  *OperatorStore
	ops    *authn.Operators
	clk    *clock
	secret string // alice's TOTP secret
}

// openOperators opens the database at path and the operator service over it, as a gateway or
// the CLI would.
func openOperators(t *testing.T, path string, clk *clock) (*OperatorStore, *authn.Operators) {
	t.Helper()
	return openOperatorsWith(t, path, clk, nil)
}

// openOperatorsWith is openOperators with the store's options.
func openOperatorsWith(t *testing.T, path string, clk *clock, opts *OperatorOptions) (*OperatorStore, *authn.Operators) {
	t.Helper()
	ctx := context.Background()
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opStore, err := st.Operators(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{
		Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: cheapArgon2}),
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return opStore, ops
}

// newFixture creates alice (role admin) with a confirmed TOTP enrolment, through one handle
// that is then closed, and reopens the database: the state lives in the file.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{path: sqldbtest.DSN(t, "identities.db"), clk: &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}}
	{
		st, err := Open(ctx, f.path)
		if err != nil {
			t.Fatal(err)
		}
		opStore, err := st.Operators(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ops, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{
			Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: cheapArgon2}),
			Now:    f.clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ops.Create(ctx, "alice", password, []string{"admin", "auditor"}); err != nil {
			t.Fatal(err)
		}
		e, err := ops.BeginEnrollment(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		f.secret = e.Secret.Reveal()
		if err := ops.ConfirmEnrollment(ctx, "alice", f.code(t)); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	f.clk.Advance(30 * time.Second) // the enrolment consumed this step's code
	f.store, f.ops = openOperators(t, f.path, f.clk)
	return f
}

func (f *fixture) code(t *testing.T) string {
	t.Helper()
	c, err := totp.GenerateCode(f.secret, f.clk.Now())
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

func TestLoginNeedsPasswordAndCurrentCode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		password string
		code     func() string
		want     authn.Reason
	}{
		{"wrong password, right code", "not the password at all", func() string { return f.code(t) }, authn.ReasonBadPassword},
		{"right password, no code", password, func() string { return "" }, authn.ReasonBadTOTP},
		{"right password, wrong code", password, func() string { return wrongCode(f.code(t)) }, authn.ReasonBadTOTP},
		{"right password, code from five minutes ago", password, func() string {
			c, _ := totp.GenerateCode(f.secret, f.clk.Now().Add(-5*time.Minute))
			return c
		}, authn.ReasonBadTOTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.ops.Login(ctx, "alice", tt.password, tt.code())
			if got := authn.ReasonOf(err); got != tt.want {
				t.Errorf("login refused with %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	if err := f.store.ResetLoginFailures(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	token, p, err := f.ops.Login(ctx, "alice", password, f.code(t))
	if err != nil {
		t.Fatalf("login with password and current code: %v", err)
	}
	if diff := cmp.Diff([]string{"admin", "auditor"}, p.Roles); p.Subject != "alice" || diff != "" {
		t.Errorf("principal %q roles (-want +got):\n%s", p.Subject, diff)
	}
	// The token works through another handle on the same file (the gateway's).
	_, other := openOperators(t, f.path, f.clk)
	if p, err := other.Sessions().Authenticate(ctx, token.Reveal()); err != nil || p.Subject != "alice" {
		t.Errorf("session from another handle: %+v %v", p, err)
	}
	if f, err := f.store.LoginFailures(ctx, "alice"); err != nil || f.Count != 0 {
		t.Errorf("failures after a success: %+v %v, want none", f, err)
	}
}

func TestSameCodeTwiceFails(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code := f.code(t)
	if _, _, err := f.ops.Login(ctx, "alice", password, code); err != nil {
		t.Fatalf("first use: %v", err)
	}
	// Replayed within the same step and through a second handle, as a second gateway would.
	_, other := openOperators(t, f.path, f.clk)
	if _, _, err := other.Login(ctx, "alice", password, code); authn.ReasonOf(err) != authn.ReasonBadTOTP {
		t.Errorf("replayed code: %v, want bad_totp", err)
	}
	// The previous step's code, still inside the drift window, is older than the claimed one.
	f.clk.Advance(30 * time.Second)
	prev, _ := totp.GenerateCode(f.secret, f.clk.Now().Add(-30*time.Second))
	if prev != code {
		t.Fatal("test clock: the previous step's code should be the one already used")
	}
	if _, _, err := f.ops.Login(ctx, "alice", password, prev); authn.ReasonOf(err) != authn.ReasonBadTOTP {
		t.Errorf("code of an already used step: %v, want bad_totp", err)
	}
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); err != nil {
		t.Errorf("next step's code: %v", err)
	}
}

func TestFiveWrongPasswordsLockWithBackoff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 5 {
		if _, _, err := f.ops.Login(ctx, "alice", "wrong password number "+string(rune('a'+i)), f.code(t)); authn.ReasonOf(err) != authn.ReasonBadPassword {
			t.Fatalf("attempt %d: %v, want bad_password", i+1, err)
		}
	}
	if got, err := f.store.LoginFailures(ctx, "alice"); err != nil || got.Count != 5 || !got.Last.Equal(f.clk.Now()) {
		t.Fatalf("failures: %+v %v, want 5 at %v", got, err, f.clk.Now())
	}
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); authn.ReasonOf(err) != authn.ReasonLocked {
		t.Fatalf("right credentials while locked: %v, want locked", err)
	}
	// The first lock lasts one minute; the next failure doubles it.
	f.clk.Advance(61 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", "still the wrong password", f.code(t)); authn.ReasonOf(err) != authn.ReasonBadPassword {
		t.Fatalf("after the first lock: %v, want bad_password", err)
	}
	f.clk.Advance(61 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); authn.ReasonOf(err) != authn.ReasonLocked {
		t.Fatalf("one minute into the doubled lock: %v, want locked", err)
	}
	f.clk.Advance(60 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); err != nil {
		t.Fatalf("after the doubled lock: %v", err)
	}
}

func TestRecordLoginFailureIsAtomic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := f.clk.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.store.RecordLoginFailure(ctx, "alice", at); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := f.store.LoginFailures(ctx, "alice"); err != nil || got.Count != 20 {
		t.Errorf("after 20 concurrent failures: %+v %v, want count 20", got, err)
	}
}

func TestDisabledOperatorCannotLogIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token, _, err := f.ops.Login(ctx, "alice", password, f.code(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ops.Disable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ops.Sessions().Authenticate(ctx, token.Reveal()); err == nil {
		t.Error("a disabled operator's session still authenticates")
	}
	f.clk.Advance(30 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); authn.ReasonOf(err) != authn.ReasonDisabled {
		t.Errorf("login while disabled: %v, want disabled", err)
	}
	if err := f.ops.Enable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(30 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); err != nil {
		t.Errorf("login after enable: %v", err)
	}
}

func TestSessionsExpire(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // advance, then authenticate; all but the last must succeed
	}{
		{"idle for 30 minutes", []time.Duration{29 * time.Minute, 30 * time.Minute}},
		{"8 hours after login, however active", func() []time.Duration {
			var s []time.Duration
			for range 16 {
				s = append(s, 29*time.Minute+59*time.Second) // active: 16 × ~30 min < 8 h
			}
			return append(s, 17*time.Second) // 8 h and 1 s after login
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			start := f.clk.Now()
			token, _, err := f.ops.Login(ctx, "alice", password, f.code(t))
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tt.steps {
				f.clk.Advance(d)
				_, err := f.ops.Sessions().Authenticate(ctx, token.Reveal())
				last := i == len(tt.steps)-1
				switch {
				case !last && err != nil:
					t.Fatalf("%v after login: %v", f.clk.Now().Sub(start), err)
				case last && authn.ReasonOf(err) != authn.ReasonSessionExpired:
					t.Fatalf("%v after login: %v, want session_expired", f.clk.Now().Sub(start), err)
				}
			}
			if _, err := f.store.Session(ctx, sessionID(token.Reveal())); !errors.Is(err, authn.ErrNotFound) {
				t.Errorf("an expired session is still stored: %v", err)
			}
		})
	}
}

func TestLogoutAndResetEndSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, _, err := f.ops.Login(ctx, "alice", password, f.code(t))
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(30 * time.Second)
	b, _, err := f.ops.Login(ctx, "alice", password, f.code(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ops.Sessions().Logout(ctx, a.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ops.Sessions().Authenticate(ctx, a.Reveal()); authn.ReasonOf(err) != authn.ReasonUnknownSession {
		t.Errorf("after logout: %v, want unknown_session", err)
	}
	if _, err := f.ops.Sessions().Authenticate(ctx, b.Reveal()); err != nil {
		t.Errorf("the other session after one logout: %v", err)
	}
	if err := f.ops.ResetMFA(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ops.Sessions().Authenticate(ctx, b.Reveal()); authn.ReasonOf(err) != authn.ReasonUnknownSession {
		t.Errorf("after MFA reset: %v, want unknown_session", err)
	}
	f.clk.Advance(30 * time.Second)
	if _, _, err := f.ops.Login(ctx, "alice", password, f.code(t)); authn.ReasonOf(err) != authn.ReasonMFARequired {
		t.Errorf("login after MFA reset: %v, want mfa_not_enrolled", err)
	}
}

func TestConcurrentClaimOfOneStepHasOneWinner(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Two handles, as two gateway processes sharing the file.
	other, _ := openOperators(t, f.path, f.clk)
	const step = 99_000_000
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 20 {
		st := f.store
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() {
			ok, err := st.ClaimTOTPStep(ctx, "bob", step)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of 20 concurrent claims of one step won, want exactly 1", wins)
	}
	for _, tc := range []struct {
		step int64
		want bool
	}{{step - 1, false}, {step, false}, {step + 1, true}} {
		if ok, err := f.store.ClaimTOTPStep(ctx, "bob", tc.step); err != nil || ok != tc.want {
			t.Errorf("claim step %d after %d: %v %v, want %v", tc.step, step, ok, err, tc.want)
		}
	}
}

func TestOperatorRecords(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	err := f.store.CreateOperator(ctx, authn.Operator{Name: "alice", PasswordHash: "x"})
	if !errors.Is(err, authn.ErrExists) {
		t.Errorf("creating alice twice: %v, want ErrExists", err)
	}
	if _, err := f.store.Operator(ctx, "nobody"); !errors.Is(err, authn.ErrNotFound) {
		t.Errorf("unknown operator: %v, want ErrNotFound", err)
	}
	if err := f.store.UpdateOperator(ctx, authn.Operator{Name: "nobody"}); !errors.Is(err, authn.ErrNotFound) {
		t.Errorf("updating an unknown operator: %v, want ErrNotFound", err)
	}
	if err := f.ops.Create(ctx, "bob", password, nil); err != nil {
		t.Fatal(err)
	}
	list, err := f.ops.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name     string
		Roles    []string
		Disabled bool
		Created  time.Time
	}
	var got []row
	for _, op := range list {
		got = append(got, row{op.Name, op.Roles, op.Disabled, op.CreatedAt})
	}
	want := []row{
		{"alice", []string{"admin", "auditor"}, false, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		{"bob", []string{}, false, f.clk.Now()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	alice, err := f.store.Operator(ctx, "alice")
	if err != nil || alice.TOTPSecret != f.secret || alice.PendingTOTP != "" {
		t.Errorf("alice's stored TOTP: %+v %v", alice, err)
	}
}

func sessionID(token string) [32]byte { return sha256.Sum256([]byte(token)) }
