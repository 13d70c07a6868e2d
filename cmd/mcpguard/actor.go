package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// operatorTokenEnv names the environment variable that carries an operator's session token
// (mcps_…, from `mcpguard operators login`) to the commands that change state. It is read from
// the environment so that it never shows in the process list.
const operatorTokenEnv = "MCPGUARD_OPERATOR_TOKEN"

// authHelp is the help text shared by the commands that change state.
const authHelp = `Every change is recorded in the audit log with the operator who made it: the change and its
record are written in one transaction to an admin journal in the same database, which the
gateway drains into the audit log (at start, and within a second while it runs). Authenticate
by logging in and exporting the session token:

  export ` + operatorTokenEnv + `=$(mcpguard operators login --config FILE NAME)

While no operator exists (a new identities database), changes are allowed without it and
recorded with the actor "bootstrap" and the OS user.`

// adminEnv holds what tests replace in the administrative commands (keys, operators, tools):
// the clock, the password hasher's cost and the environment.
type adminEnv struct {
	now    func() time.Time        // default time.Now
	hasher *authn.PasswordHasher   // default authn.NewPasswordHasher(nil)
	getenv func(key string) string // default os.Getenv
}

func (e adminEnv) withDefaults() adminEnv {
	if e.now == nil {
		e.now = time.Now
	}
	if e.getenv == nil {
		e.getenv = os.Getenv
	}
	return e
}

// identities is the identities database (api_keys_database) opened for an administrative
// command: API keys, operators and their sessions, and the admin journal.
type identities struct {
	cfgPath string
	cfg     *config.Config
	env     adminEnv
	keys    *keystore.Store
	store   *keystore.OperatorStore
	ops     *authn.Operators
}

// openIdentities loads the configuration and opens the identities database it names.
func openIdentities(ctx context.Context, cfgPath string, env adminEnv) (*identities, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	return openIdentitiesOf(ctx, cfgPath, cfg, env)
}

// openAsActor opens the identities database of the configuration at cfgPath and authenticates
// the operator who makes a change (identities.actor); the caller closes what it returns.
func openAsActor(ctx context.Context, cfgPath string, env adminEnv) (*identities, journal.Actor, error) {
	id, err := openIdentities(ctx, cfgPath, env)
	if err != nil {
		return nil, journal.Actor{}, err
	}
	actor, err := id.actor(ctx)
	if err != nil {
		id.Close()
		return nil, journal.Actor{}, err
	}
	return id, actor, nil
}

func openIdentitiesOf(ctx context.Context, cfgPath string, cfg *config.Config, env adminEnv) (*identities, error) {
	env = env.withDefaults()
	if cfg.APIKeysDatabase == "" {
		return nil, fmt.Errorf("%s has no api_keys_database: set it to the SQLite file that holds identities (API keys and operators)", cfgPath)
	}
	key, err := cfg.IdentityKey()
	if err != nil {
		return nil, err
	}
	st, err := keystore.Open(ctx, cfg.APIKeysDatabase)
	if err != nil {
		return nil, err
	}
	opStore, err := st.Operators(ctx, &keystore.OperatorOptions{SecretKey: key})
	if err != nil {
		st.Close()
		return nil, err
	}
	ops, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{Hasher: env.hasher, Now: env.now})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &identities{cfgPath: cfgPath, cfg: cfg, env: env, keys: st, store: opStore, ops: ops}, nil
}

func (id *identities) Close() { id.keys.Close() }

// cliActor is the actor's description of where the CLI runs: the OS user and the host.
func cliActor() journal.Actor {
	a := journal.Actor{}
	if u, err := user.Current(); err == nil {
		a.OSUser = u.Username
	} else {
		a.OSUser = os.Getenv("USER")
	}
	a.Host, _ = os.Hostname()
	return a
}

// errNeedsOperator says what to do when a change is attempted without authentication once
// operators exist.
func errNeedsOperator(cfgPath string) error {
	return fmt.Errorf("this change must be made by an authenticated operator, and %s is not set: "+
		"log in with `mcpguard operators login --config %s NAME`, then `export %s=<the mcps_… token it prints>` and run the command again",
		operatorTokenEnv, cfgPath, operatorTokenEnv)
}

// actor authenticates who runs a command that changes state: the operator whose session token
// is in MCPGUARD_OPERATOR_TOKEN or, while no operator exists, the bootstrap actor. Once any
// operator exists a change without a valid token is refused.
func (id *identities) actor(ctx context.Context) (journal.Actor, error) {
	a := cliActor()
	if tok := id.env.getenv(operatorTokenEnv); tok != "" {
		p, err := id.ops.Sessions().Authenticate(ctx, tok)
		if err != nil {
			if authn.ReasonOf(err) == authn.ReasonStore {
				return a, err
			}
			return a, fmt.Errorf("%s is not a valid operator session (%s): log in again with `mcpguard operators login --config %s NAME` and set %s to the token it prints",
				operatorTokenEnv, authn.ReasonOf(err), id.cfgPath, operatorTokenEnv)
		}
		a.Principal, a.Roles, a.AuthMethod, a.SessionRef = p.Subject, p.Roles, journal.AuthOperatorSession, p.KeyID
		return a, nil
	}
	has, err := id.ops.HasOperators(ctx)
	if err != nil {
		return a, err
	}
	if has {
		return a, errNeedsOperator(id.cfgPath)
	}
	a.Principal, a.AuthMethod = journal.BootstrapPrincipal, journal.AuthBootstrap
	return a, nil
}

// act performs change as e's actor, in one transaction with e's journal entry. A bootstrap
// actor is checked again inside the transaction: if an operator was created meanwhile, the
// change is refused. A change refused because its target does not exist, or exists already, is
// recorded as refused (the error is returned either way).
func (id *identities) act(ctx context.Context, e *journal.Entry, change func(tx keystore.Tx, ops *authn.Operators) error) error {
	bootstrapRefused := false
	err := id.keys.Act(ctx, e, id.store, func(tx keystore.Tx) error {
		ops := id.ops.WithStores(tx.Operators, tx.Operators)
		if e.Actor.AuthMethod == journal.AuthBootstrap {
			has, err := ops.HasOperators(ctx)
			if err != nil {
				return err
			}
			if has {
				bootstrapRefused = true
				return errNeedsOperator(id.cfgPath)
			}
		}
		return change(tx, ops)
	})
	if err == nil || bootstrapRefused {
		return err
	}
	reason := ""
	switch {
	case errors.Is(err, authn.ErrNotFound):
		reason = "not_found"
	case errors.Is(err, authn.ErrExists):
		reason = "exists"
	default:
		return err
	}
	e.Refuse(reason)
	if rerr := id.keys.Record(ctx, e); rerr != nil {
		return errors.Join(err, fmt.Errorf("recording the refusal: %w", rerr))
	}
	return err
}

// login checks an operator's password and TOTP code and opens a session, recording the login —
// or its refusal, with the reason and the lockout it caused — in the same transaction as what
// it changed (the session, the failure count, the used TOTP step). A session whose record cannot
// be written is never opened.
func (id *identities) login(ctx context.Context, name, password, code string) (authn.Secret, *authn.Principal, error) {
	if name == "" {
		return authn.Secret{}, nil, errors.New("the operator NAME is empty")
	}
	actor := cliActor()
	actor.Principal, actor.AuthMethod = name, journal.AuthPasswordTOTP
	e := journal.NewEntry(journal.ActOperatorLogin, actor, id.env.now())
	e.Target.Operator = name
	var token authn.Secret
	var p *authn.Principal
	var refused error
	err := id.keys.Act(ctx, e, id.store, func(tx keystore.Tx) error {
		ops := id.ops.WithStores(tx.Operators, tx.Operators)
		var err error
		token, p, err = ops.Login(ctx, name, password, code)
		if err == nil {
			e.Actor.Roles, e.Actor.SessionRef = p.Roles, p.KeyID
			return nil
		}
		reason := authn.ReasonOf(err)
		if reason == "" || reason == authn.ReasonStore {
			return err
		}
		refused = err
		e.Refuse(string(reason))
		if until, lerr := ops.LockedUntil(ctx, name); lerr == nil && !until.IsZero() {
			e.LockedUntil = until
		}
		return nil // the failure count and the refusal's record commit together
	})
	if err != nil {
		return authn.Secret{}, nil, err
	}
	if refused != nil {
		return authn.Secret{}, nil, refused
	}
	return token, p, nil
}

// enrolmentActor authenticates who enrols name's TOTP: the operator in MCPGUARD_OPERATOR_TOKEN
// or, without it, name themselves by their password — the one act an operator without TOTP can
// authenticate for. A wrong password counts towards the lockout and is recorded.
func (id *identities) enrolmentActor(ctx context.Context, in *prompter, name string) (journal.Actor, error) {
	if id.env.getenv(operatorTokenEnv) != "" {
		return id.actor(ctx)
	}
	if _, err := id.store.Operator(ctx, name); err != nil {
		return journal.Actor{}, explainOperatorErr(err, name)
	}
	password, err := in.secret("Password for " + name + ": ")
	if err != nil {
		return journal.Actor{}, fmt.Errorf("%w (or set %s to an operator's session token to enrol %s for them)", err, operatorTokenEnv, name)
	}
	actor := cliActor()
	actor.Principal, actor.AuthMethod = name, journal.AuthPassword
	roles, err := id.ops.CheckPassword(ctx, name, password)
	if err == nil {
		actor.Roles = roles
		return actor, nil
	}
	reason := authn.ReasonOf(err)
	if reason == "" || reason == authn.ReasonStore {
		return actor, err
	}
	e := journal.NewEntry(journal.ActOperatorEnrollMFA, actor, id.env.now())
	e.Target.Operator = name
	e.Refuse(string(reason))
	if until, lerr := id.ops.LockedUntil(ctx, name); lerr == nil && !until.IsZero() {
		e.LockedUntil = until
	}
	if rerr := id.keys.Record(ctx, e); rerr != nil {
		return actor, fmt.Errorf("recording the refused enrolment: %w", rerr)
	}
	return actor, fmt.Errorf("enrolment refused: the password of %s is wrong, or the account is locked or disabled; "+
		"an operator who can log in may enrol them instead (set %s)", name, operatorTokenEnv)
}
