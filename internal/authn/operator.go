package authn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"time"
)

// Operator is a human account for the admin API, the CLI and the console.
type Operator struct {
	Name         string
	Roles        []string
	PasswordHash string // argon2id PHC string
	TOTPSecret   string // base32; empty until enrolment is confirmed
	PendingTOTP  string // base32; set between BeginEnrollment and ConfirmEnrollment
	Disabled     bool
	CreatedAt    time.Time
}

// LoginFailures counts an operator's failed logins since the last success.
type LoginFailures struct {
	Count int
	Last  time.Time
}

// ErrExists is returned by stores for a record that already exists.
var ErrExists = errors.New("already exists")

// OperatorStore persists operator accounts and the state that must be atomic across instances.
// The TOTP secret is a shared secret: a store should keep it encrypted at rest.
type OperatorStore interface {
	CreateOperator(ctx context.Context, op Operator) error       // ErrExists when the name is taken
	Operator(ctx context.Context, name string) (Operator, error) // ErrNotFound when absent
	UpdateOperator(ctx context.Context, op Operator) error       // ErrNotFound when absent
	ListOperators(ctx context.Context) ([]Operator, error)       // ordered by name
	// ClaimTOTPStep records that the operator used the code of TOTP time step; it reports
	// false, atomically, when a code of that step or a later one was already used. This makes
	// each code single-use and a captured older code useless.
	ClaimTOTPStep(ctx context.Context, name string, step int64) (bool, error)
	// RecordLoginFailure atomically adds one failure at at and returns the new count.
	RecordLoginFailure(ctx context.Context, name string, at time.Time) (LoginFailures, error)
	LoginFailures(ctx context.Context, name string) (LoginFailures, error)
	ResetLoginFailures(ctx context.Context, name string) error
}

// OperatorsOptions configures Operators.
type OperatorsOptions struct {
	Issuer      string          // label in authenticator apps (default "mcpguard")
	Hasher      *PasswordHasher // default NewPasswordHasher(nil)
	MaxFailures int             // failures before the account locks (default 5)
	BaseLockout time.Duration   // first lockout (default 1 min), doubled per further failure
	MaxLockout  time.Duration   // lockout ceiling (default 1 h)
	Sessions    SessionOptions  // absolute and idle limits
	Now         func() time.Time
	Rand        io.Reader
	Logger      *slog.Logger
}

// Operators manages operator accounts, their MFA, logins and sessions. Login requires the
// password and a current TOTP code; an account without confirmed TOTP cannot log in.
type Operators struct {
	store       OperatorStore
	sessions    *Sessions
	hasher      *PasswordHasher
	issuer      string
	maxFailures int
	base, max   time.Duration
	now         func() time.Time
	rand        io.Reader
	logger      *slog.Logger
	dummyHash   string // verified for unknown names so that they cost as much as known ones
}

var operatorName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// NewOperators returns the operator service over its stores.
func NewOperators(ctx context.Context, store OperatorStore, sessions SessionStore, opts *OperatorsOptions) (*Operators, error) {
	if opts == nil {
		opts = &OperatorsOptions{}
	}
	o := &Operators{
		store:       store,
		hasher:      opts.Hasher,
		issuer:      cmpOr(opts.Issuer, "mcpguard"),
		maxFailures: orDefault(opts.MaxFailures, 5),
		base:        orDefault(opts.BaseLockout, time.Minute),
		max:         orDefault(opts.MaxLockout, time.Hour),
		now:         opts.Now,
		rand:        opts.Rand,
		logger:      opts.Logger,
	}
	if o.hasher == nil {
		o.hasher = NewPasswordHasher(nil)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.rand == nil {
		o.rand = rand.Reader
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.sessions = newSessions(sessions, store, opts.Sessions, o.now, o.rand)
	dummy, err := o.hasher.Hash(ctx, "no operator has this password")
	if err != nil {
		return nil, fmt.Errorf("operators: %w", err)
	}
	o.dummyHash = dummy
	return o, nil
}

// Sessions returns the operator session manager.
func (o *Operators) Sessions() *Sessions { return o.sessions }

// CheckOperatorName refuses a name an operator account cannot have.
func CheckOperatorName(name string) error {
	if !operatorName.MatchString(name) {
		return fmt.Errorf("operator name %q: use 1-64 lower-case letters, digits and . _ @ -", truncate(name))
	}
	return nil
}

// Create adds an operator with a password; TOTP enrolment follows with BeginEnrollment.
func (o *Operators) Create(ctx context.Context, name, password string, roles []string) error {
	if err := CheckOperatorName(name); err != nil {
		return err
	}
	hash, err := o.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("create operator %s: %w", name, err)
	}
	op := Operator{Name: name, Roles: slices.Clone(roles), PasswordHash: hash, CreatedAt: o.now()}
	if err := o.store.CreateOperator(ctx, op); err != nil {
		return fmt.Errorf("create operator %s: %w", name, err)
	}
	return nil
}

// SetPassword replaces an operator's password and ends their sessions.
func (o *Operators) SetPassword(ctx context.Context, name, password string) error {
	return o.update(ctx, name, "set password", func(op *Operator) error {
		hash, err := o.hasher.Hash(ctx, password)
		op.PasswordHash = hash
		return err
	})
}

// BeginEnrollment creates a TOTP secret for the operator, pending until ConfirmEnrollment sees
// a valid code from it. An operator who already has TOTP must have it reset first.
func (o *Operators) BeginEnrollment(ctx context.Context, name string) (Enrollment, error) {
	var e Enrollment
	err := o.update(ctx, name, "enrol TOTP", func(op *Operator) error {
		if op.TOTPSecret != "" {
			return errors.New("TOTP is already enrolled: reset it first")
		}
		var err error
		e, err = newEnrollment(o.issuer, op.Name, o.rand)
		op.PendingTOTP = e.Secret.Reveal()
		return err
	})
	return e, err
}

// ErrNoEnrollment: a TOTP code was given to confirm an enrolment that was never begun (or was
// confirmed or reset meanwhile).
var ErrNoEnrollment = errors.New("no enrolment in progress")

// ConfirmEnrollment activates the pending TOTP secret when code is valid for it. The code is
// consumed: it cannot also be used to log in. A wrong or already used code is a *Rejection
// (ReasonBadTOTP).
func (o *Operators) ConfirmEnrollment(ctx context.Context, name, code string) error {
	op, err := o.store.Operator(ctx, name)
	if err != nil {
		return fmt.Errorf("confirm TOTP for %s: %w", name, err)
	}
	if op.PendingTOTP == "" {
		return fmt.Errorf("confirm TOTP for %s: %w", name, ErrNoEnrollment)
	}
	step, err := matchTOTP(op.PendingTOTP, code, o.now())
	if err != nil {
		return reject(ReasonBadTOTP, fmt.Errorf("confirm TOTP for %s: %w", name, err))
	}
	switch ok, err := o.store.ClaimTOTPStep(ctx, name, step); {
	case err != nil:
		return fmt.Errorf("confirm TOTP for %s: %w", name, err)
	case !ok:
		return rejectf(ReasonBadTOTP, "confirm TOTP for %s: code already used", name)
	}
	op.TOTPSecret, op.PendingTOTP = op.PendingTOTP, ""
	if err := o.store.UpdateOperator(ctx, op); err != nil {
		return fmt.Errorf("confirm TOTP for %s: %w", name, err)
	}
	return nil
}

// ResetMFA removes an operator's TOTP (they must enrol again before logging in) and ends their
// sessions.
func (o *Operators) ResetMFA(ctx context.Context, name string) error {
	return o.update(ctx, name, "reset TOTP", func(op *Operator) error {
		op.TOTPSecret, op.PendingTOTP = "", ""
		return nil
	})
}

// Disable blocks an operator from logging in and ends their sessions.
func (o *Operators) Disable(ctx context.Context, name string) error {
	return o.update(ctx, name, "disable operator", func(op *Operator) error {
		op.Disabled = true
		return nil
	})
}

// Enable lets a disabled operator log in again.
func (o *Operators) Enable(ctx context.Context, name string) error {
	return o.update(ctx, name, "enable operator", func(op *Operator) error {
		op.Disabled = false
		return nil
	})
}

// List returns every operator (password hashes and TOTP secrets cleared).
func (o *Operators) List(ctx context.Context) ([]Operator, error) {
	ops, err := o.store.ListOperators(ctx)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	for i := range ops {
		ops[i].PasswordHash, ops[i].TOTPSecret, ops[i].PendingTOTP = "", "", ""
	}
	return ops, nil
}

func (o *Operators) update(ctx context.Context, name, what string, change func(op *Operator) error) error {
	op, err := o.store.Operator(ctx, name)
	if err != nil {
		return fmt.Errorf("%s for %s: %w", what, name, err)
	}
	if err := change(&op); err != nil {
		return fmt.Errorf("%s for %s: %w", what, name, err)
	}
	if err := o.store.UpdateOperator(ctx, op); err != nil {
		return fmt.Errorf("%s for %s: %w", what, name, err)
	}
	if err := o.sessions.endAll(ctx, name); err != nil {
		return fmt.Errorf("%s for %s: end sessions: %w", what, name, err)
	}
	return nil
}

// lockedUntil is when a locked account opens again (zero: not locked). After maxFailures
// failures the lock lasts base, doubling with each further failure up to max.
func (o *Operators) lockedUntil(f LoginFailures) time.Time {
	if f.Count < o.maxFailures {
		return time.Time{}
	}
	d := o.base
	for i := o.maxFailures; i < f.Count && d < o.max; i++ {
		d *= 2
	}
	return f.Last.Add(min(d, o.max))
}

// Login checks name, password and a current TOTP code, and opens a session. Every refusal is a
// *Rejection; show the caller one message for all of them. The returned Secret is the session
// token (a cookie or bearer value); it is not stored anywhere, only its SHA-256.
func (o *Operators) Login(ctx context.Context, name, password, code string) (Secret, *Principal, error) {
	op, err := o.store.Operator(ctx, name)
	if errors.Is(err, ErrNotFound) {
		_, _, _ = o.hasher.Verify(ctx, o.dummyHash, password)
		return Secret{}, nil, rejectf(ReasonBadPassword, "no operator %q", truncate(name))
	}
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	failures, err := o.store.LoginFailures(ctx, name)
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	now := o.now()
	if until := o.lockedUntil(failures); now.Before(until) {
		return Secret{}, nil, rejectf(ReasonLocked, "operator %s locked until %s after %d failures", name, until.UTC().Format(time.RFC3339), failures.Count)
	}
	ok, rehash, err := o.hasher.Verify(ctx, op.PasswordHash, password)
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, fmt.Errorf("operator %s: %w", name, err))
	}
	if !ok {
		return Secret{}, nil, o.fail(ctx, name, now, rejectf(ReasonBadPassword, "wrong password for operator %s", name))
	}
	if op.Disabled {
		return Secret{}, nil, rejectf(ReasonDisabled, "operator %s is disabled", name)
	}
	if op.TOTPSecret == "" {
		return Secret{}, nil, rejectf(ReasonMFARequired, "operator %s has no confirmed TOTP enrolment", name)
	}
	step, err := matchTOTP(op.TOTPSecret, code, now)
	if err != nil {
		return Secret{}, nil, o.fail(ctx, name, now, rejectf(ReasonBadTOTP, "operator %s: %w", name, err))
	}
	fresh, err := o.store.ClaimTOTPStep(ctx, name, step)
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	if !fresh {
		return Secret{}, nil, o.fail(ctx, name, now, rejectf(ReasonBadTOTP, "operator %s: TOTP code already used", name))
	}
	if err := o.store.ResetLoginFailures(ctx, name); err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	if rehash {
		if hash, err := o.hasher.Hash(ctx, password); err == nil {
			op.PasswordHash = hash
			if err := o.store.UpdateOperator(ctx, op); err != nil {
				o.logger.Warn("could not store the operator's rehashed password", "operator", name, "error", err)
			}
		}
	}
	token, p, err := o.sessions.open(ctx, op, true) // password and TOTP: two factors
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	return token, p, nil
}

func (o *Operators) fail(ctx context.Context, name string, now time.Time, rej *Rejection) error {
	f, err := o.store.RecordLoginFailure(ctx, name, now)
	if err != nil {
		return reject(ReasonStore, fmt.Errorf("%v; and recording the failure: %w", rej, err))
	}
	if until := o.lockedUntil(f); !until.IsZero() {
		o.logger.Warn("operator account locked", "operator", name, "failures", f.Count, "until", until)
	}
	return rej
}
