package console

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/store"
)

// maxListed bounds the rows of the lists that are not already bounded by their source (keys,
// operators, pending tool definitions, blocks).
const maxListed = 500

// actor is the journal actor of an act made in the console: the operator of the session.
func actor(p *authn.Principal) journal.Actor {
	return journal.Actor{Principal: p.Subject, Roles: p.Roles, AuthMethod: journal.AuthOperatorSession, SessionRef: p.KeyID}
}

// entry is a journal entry for act by the session's operator, made in the console.
func (c *Console) entry(act string, s *session) *journal.Entry {
	e := journal.NewEntry(act, actor(s.p), c.now())
	e.Via = "console"
	return e
}

// act performs change as the session's operator in one transaction with its journal entry, as
// the CLI does; a change refused because its target does not exist (or exists already) is
// recorded as refused.
func (c *Console) act(ctx context.Context, e *journal.Entry, change func(tx keystore.Tx, ops *authn.Operators) error) error {
	err := c.st.Keys.Act(ctx, e, c.st.OperatorStore, func(tx keystore.Tx) error {
		return change(tx, c.st.Operators.WithStores(tx.Operators, tx.Operators))
	})
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, authn.ErrNotFound):
		e.Refuse("not_found")
	case errors.Is(err, authn.ErrExists):
		e.Refuse("exists")
	default:
		return err
	}
	if rerr := c.st.Keys.Record(ctx, e); rerr != nil {
		return errors.Join(err, fmt.Errorf("recording the refusal: %w", rerr))
	}
	return err
}

// --- approvals

type approvalsData struct {
	Approvals []admin.Approval
}

// approvalsPage lists the held calls this operator's roles let it see, as GET /v1/approvals.
func (c *Console) approvalsPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Approvals", Nav: "approvals"}
	d := &approvalsData{}
	p.Data = d
	if c.opts.Approvals != nil {
		d.Approvals = c.opts.Approvals.List(r.Context(), s.p.Roles)
	}
	c.render(w, r, http.StatusOK, "approvals", s, p)
}

// decide approves or denies a held call through admin.DecideHeld, the admin API's path.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/approvals"
	id := r.PathValue("id")
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		done(w, r, back, flash{Message: `no decision: press approve or deny`, Error: true})
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if len(reason) > maxReasonBytes {
		done(w, r, back, flash{Message: "the reason is longer than 1024 bytes", Error: true})
		return
	}
	digest := strings.ToLower(r.PostFormValue("arguments_sha256"))
	if len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		done(w, r, back, flash{Message: "the form does not name the arguments decided on (arguments_sha256): reload the page", Error: true})
		return
	}
	verb := "denied"
	if approve {
		verb = "approved"
	}
	if reason == "" {
		reason = verb
	}
	if c.opts.Approvals == nil {
		done(w, r, back, flash{Message: "no call is held for approval here", Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	a, err := admin.DecideHeld(r.WithContext(ctx), c.gw, c.opts.Approvals, id, s.p,
		admin.Decision{Approve: approve, Reason: reason, ArgumentsSHA256: digest})
	if err != nil {
		msg := err.Error()
		switch {
		case errors.Is(err, admin.ErrNotRecorded):
			c.logger.Error("audit record of an approval decision not written; the decision was not taken", "approval", id, "operator", s.p.Subject, "err", err)
			msg = "the decision could not be recorded in the audit log, so it was not taken: try again later"
		case errors.Is(err, admin.ErrApprovalStore):
			c.logger.Error("approval decision not stored; the decision was not taken", "approval", id, "operator", s.p.Subject, "err", err)
			msg = "the decision could not be stored, so it was not taken: try again later"
		}
		done(w, r, back, flash{Message: "not " + verb + ": " + msg, Error: true})
		return
	}
	c.logger.Info("held call "+verb+" in the console", "approval", a.ID, "tool", a.Tool, "requester", a.Principal, "by", s.p.Subject)
	done(w, r, back, flash{Message: fmt.Sprintf("%s the call of %s to %s (approval %s)", verb, a.Principal, a.Tool, a.ID)})
}

// --- tools

type pendingTool struct {
	pins.Pending
	Description string
	Diff        []diffLine
}

type toolsData struct {
	Enabled bool
	Tools   []pendingTool
	More    int
}

// description is a tool definition's description member, "" when it has none.
func description(def string) string {
	var t struct {
		Description string `json:"description"`
	}
	_ = json.Unmarshal([]byte(def), &t)
	return t.Description
}

// toolsPage lists the tool definitions held back by pinning, each with a line diff against the
// approved definition.
func (c *Console) toolsPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Tool definitions", Nav: "tools"}
	d := &toolsData{Enabled: c.opts.Pins != nil}
	p.Data = d
	if c.opts.Pins != nil {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		list, err := c.opts.Pins.ListPending(ctx)
		if err != nil {
			c.logger.Error("console: pending tool definitions not read", "err", err)
			p.Error = "the tool pin database cannot be read: try again later"
			c.render(w, r, http.StatusServiceUnavailable, "tools", s, p)
			return
		}
		if len(list) > maxListed {
			d.More, list = len(list)-maxListed, list[:maxListed]
		}
		for _, x := range list {
			old := ""
			if x.Approved != "" {
				old = prettyJSON(x.Approved)
			}
			d.Tools = append(d.Tools, pendingTool{Pending: x, Description: description(x.Definition), Diff: lineDiff(old, prettyJSON(x.Definition))})
		}
	}
	c.render(w, r, http.StatusOK, "tools", s, p)
}

// approveTool pins the pending definition of a tool, as `mcpguard tools approve` does: the pin
// and its journal entry in one transaction.
func (c *Console) approveTool(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/tools"
	name := r.PostFormValue("tool")
	if c.opts.Pins == nil {
		done(w, r, back, flash{Message: "tool pinning is not configured", Error: true})
		return
	}
	if r.PostFormValue("decision") != "approve" || name == "" || len(name) > maxFieldText {
		done(w, r, back, flash{Message: "the form names no tool to approve", Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e := c.entry(journal.ActToolApprove, s)
	h, err := c.opts.Pins.Approve(ctx, name, e)
	if errors.Is(err, pins.ErrNothingPending) {
		e.Target.Tool = name
		e.Refuse("not_pending")
		if rerr := c.opts.Pins.Record(ctx, e); rerr != nil {
			c.logger.Error("console: refused tool approval not recorded", "err", rerr)
		}
		done(w, r, back, flash{Message: fmt.Sprintf("not approved: no definition of %s awaits approval (approved meanwhile?)", name), Error: true})
		return
	}
	if err != nil {
		c.logger.Error("console: tool definition not approved", "tool", name, "err", err)
		done(w, r, back, flash{Message: "not approved: the tool pin database cannot be written; try again later", Error: true})
		return
	}
	done(w, r, back, flash{Message: fmt.Sprintf("approved the definition of %s (%s): the gateway serves it again", name, h)})
}

// --- keys

type keyRow struct {
	authn.APIKey
	Status string
}

type keysData struct {
	Keys   []keyRow
	More   int
	NewKey string // shown once, right after it is created
	NewID  string
}

func (c *Console) keysData(ctx context.Context) (*keysData, error) {
	keys, err := c.st.Keys.ListAPIKeys(ctx)
	if err != nil {
		return nil, err
	}
	d := &keysData{}
	// Newest first: a list past maxListed keeps the recent keys.
	slices.SortStableFunc(keys, func(a, b authn.APIKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(keys) > maxListed {
		d.More, keys = len(keys)-maxListed, keys[:maxListed]
	}
	now := c.now()
	for _, k := range keys {
		st := "active"
		switch {
		case !k.RevokedAt.IsZero():
			st = "revoked"
		case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
			st = "expired"
		}
		d.Keys = append(d.Keys, keyRow{APIKey: k, Status: st})
	}
	return d, nil
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderKeys(w, r, s, http.StatusOK, "", "", nil)
}

func (c *Console) renderKeys(w http.ResponseWriter, r *http.Request, s *session, status int, newKey, newID string, f *flash) {
	p := &page{Title: "API keys", Nav: "keys", Flash: f}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	d, err := c.keysData(ctx)
	if err != nil {
		c.logger.Error("console: API keys not read", "err", err)
		p.Error = "the identities database cannot be read: try again later"
		c.render(w, r, http.StatusServiceUnavailable, "keys", s, p)
		return
	}
	d.NewKey, d.NewID = newKey, newID
	p.Data = d
	c.render(w, r, status, "keys", s, p)
}

// createKey creates an API key as `mcpguard keys create` does, and shows it once: the answer is
// the keys page itself (no redirect), never cached, so that the key is not carried by a URL or
// a cookie.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	principal := strings.TrimSpace(r.PostFormValue("name"))
	roles := splitRoles(r.PostFormValue("roles"))
	expires := r.PostFormValue("expires")
	fail := func(msg string) {
		c.renderKeys(w, r, s, http.StatusBadRequest, "", "", &flash{Message: "no key created: " + msg, Error: true})
	}
	switch {
	case principal == "":
		fail("name is required: the principal (subject) requests made with the key act as")
		return
	case len(principal) > maxFieldText:
		fail(fmt.Sprintf("name is longer than %d bytes", maxFieldText))
		return
	case len(roles) > 64:
		fail("at most 64 roles")
		return
	}
	ttl := 90 * 24 * time.Hour
	if expires != "" {
		d, err := parseTTL(expires)
		if err != nil {
			fail(err.Error())
			return
		}
		ttl = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e := c.entry(journal.ActAPIKeyCreate, s)
	var secret authn.Secret
	var rec authn.APIKey
	err := c.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error {
		var err error
		secret, rec, err = tx.CreateAPIKey(ctx, e, c.now, principal, roles, ttl)
		return err
	})
	if err != nil {
		c.logger.Error("console: API key not created", "err", err)
		c.renderKeys(w, r, s, http.StatusServiceUnavailable, "", "", &flash{Message: "no key created: the identities database cannot be written; try again later", Error: true})
		return
	}
	c.renderKeys(w, r, s, http.StatusOK, secret.Reveal(), rec.ID, &flash{Message: fmt.Sprintf(
		"created key %s for %s (roles %s): copy it now, it is shown only once", rec.ID, rec.Principal, strings.Join(rec.Roles, ","))})
}

// revokeKey revokes an API key as `mcpguard keys revoke` does.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/keys"
	id := r.PathValue("id")
	if r.PostFormValue("decision") != "revoke" {
		done(w, r, back, flash{Message: "nothing revoked: press revoke", Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e := c.entry(journal.ActAPIKeyRevoke, s)
	e.Target.KeyID = id
	err := c.act(ctx, e, func(tx keystore.Tx, _ *authn.Operators) error {
		k, err := tx.Keys.APIKey(ctx, id)
		if err != nil {
			return err
		}
		e.Target.Principal = k.Principal
		return authn.NewAPIKeys(tx.Keys, &authn.APIKeysOptions{Now: c.now}).Revoke(ctx, id)
	})
	switch {
	case errors.Is(err, authn.ErrNotFound):
		done(w, r, back, flash{Message: fmt.Sprintf("nothing revoked: no API key with id %q", id), Error: true})
	case err != nil:
		c.logger.Error("console: API key not revoked", "key", id, "err", err)
		done(w, r, back, flash{Message: "nothing revoked: the identities database cannot be written; try again later", Error: true})
	default:
		done(w, r, back, flash{Message: fmt.Sprintf("revoked key %s: the gateway refuses it from the next request on", id)})
	}
}

// parseTTL reads a key's lifetime: days ("90d"), a duration ("12h") or "never".
func parseTTL(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && strings.HasSuffix(s, "d") && fmt.Sprintf("%dd", n) == s {
		if n <= 0 || n > 3650 {
			return 0, fmt.Errorf("expires %q: want 1 to 3650 days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 3650*24*time.Hour {
		return 0, fmt.Errorf(`expires %q: want a number of days ("90d"), a duration ("12h") or "never"`, s)
	}
	return d, nil
}

func splitRoles(s string) []string {
	var list []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(list, r) {
			list = append(list, r)
		}
	}
	return list
}

// --- operators

type operatorRow struct {
	authn.Operator
	Status, MFA string
	Self        bool
}

type operatorsData struct {
	Operators []operatorRow
	More      int
	// NewOperator and NewPassword: the operator just created and their one-time password,
	// shown once.
	NewOperator, NewPassword string
}

func (c *Console) operatorsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderOperators(w, r, s, http.StatusOK, nil, nil)
}

// renderOperators renders the operators page with status, an optional flash and, once, a
// created operator's one-time password (created).
func (c *Console) renderOperators(w http.ResponseWriter, r *http.Request, s *session, status int, f *flash, created *operatorsData) {
	p := &page{Title: "Operators", Nav: "operators", Flash: f}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	all, err := c.st.OperatorStore.ListOperators(ctx)
	if err != nil {
		c.logger.Error("console: operators not read", "err", err)
		p.Error = "the identities database cannot be read: try again later"
		c.render(w, r, http.StatusServiceUnavailable, "operators", s, p)
		return
	}
	d := &operatorsData{}
	if created != nil {
		d.NewOperator, d.NewPassword = created.NewOperator, created.NewPassword
	}
	if len(all) > maxListed {
		d.More, all = len(all)-maxListed, all[:maxListed]
	}
	for _, op := range all {
		row := operatorRow{Operator: authn.Operator{Name: op.Name, Roles: op.Roles, Disabled: op.Disabled, CreatedAt: op.CreatedAt},
			Status: "active", MFA: "none", Self: op.Name == s.p.Subject}
		if op.Disabled {
			row.Status = "disabled"
		}
		switch {
		case op.TOTPSecret != "":
			row.MFA = "enrolled"
		case op.PendingTOTP != "":
			row.MFA = "pending"
		}
		d.Operators = append(d.Operators, row)
	}
	p.Data = d
	c.render(w, r, status, "operators", s, p)
}

// oneTimePasswordBytes is the entropy of a created operator's one-time password (160 bits).
const oneTimePasswordBytes = 20

// createOperator creates an operator account as `mcpguard operators create` does, with a
// one-time password the console makes and shows once (the answer is the page itself, never
// cached, never in a URL or a cookie). The new operator cannot log in until they have chosen
// their own password and enrolled an authenticator app at /console/enroll, which needs it.
func (c *Console) createOperator(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	roles := splitRoles(r.PostFormValue("roles"))
	fail := func(status int, msg string) {
		c.renderOperators(w, r, s, status, &flash{Message: "no operator created: " + msg, Error: true}, nil)
	}
	if len(roles) > 64 {
		fail(http.StatusBadRequest, "at most 64 roles")
		return
	}
	if err := authn.CheckOperatorName(name); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	var raw [oneTimePasswordBytes]byte
	_, _ = rand.Read(raw[:])
	password := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:])
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e := c.entry(journal.ActOperatorCreate, s)
	e.Target = journal.Target{Operator: name, Roles: roles}
	err := c.act(ctx, e, func(_ keystore.Tx, ops *authn.Operators) error { return ops.Create(ctx, name, password, roles) })
	switch {
	case errors.Is(err, authn.ErrExists):
		fail(http.StatusConflict, fmt.Sprintf("operator %q exists already", name))
		return
	case err != nil:
		c.logger.Error("console: operator not created", "operator", name, "err", err)
		fail(http.StatusServiceUnavailable, "the identities database cannot be written; try again later")
		return
	}
	c.renderOperators(w, r, s, http.StatusOK, &flash{Message: fmt.Sprintf(
		"created operator %s (roles %s): give them the one-time password below through another channel; it is shown only once", name, strings.Join(roles, ","))},
		&operatorsData{NewOperator: name, NewPassword: password})
}

// operatorAct disables or enables an operator as `mcpguard operators disable|enable` does.
// Disabling ends the operator's sessions at once; an operator cannot disable themselves here
// (another operator must), so that the console cannot lock out the last one by a slip.
func (c *Console) operatorAct(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/operators"
	name := r.PathValue("name")
	var act, verb string
	var change func(*authn.Operators, context.Context, string) error
	switch r.PathValue("act") {
	case "disable":
		act, verb, change = journal.ActOperatorDisable, "disabled", (*authn.Operators).Disable
	case "enable":
		act, verb, change = journal.ActOperatorEnable, "enabled", (*authn.Operators).Enable
	case "reset-mfa":
		act, verb, change = journal.ActOperatorResetMFA, "reset", (*authn.Operators).ResetMFA
	default:
		done(w, r, back, flash{Message: "unknown act: disable, enable or reset-mfa", Error: true})
		return
	}
	if act != journal.ActOperatorEnable && name == s.p.Subject {
		done(w, r, back, flash{Message: fmt.Sprintf("not %s: you cannot do this to your own account; another operator must", verb), Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e := c.entry(act, s)
	e.Target.Operator = name
	err := c.act(ctx, e, func(_ keystore.Tx, ops *authn.Operators) error { return change(ops, ctx, name) })
	switch {
	case errors.Is(err, authn.ErrNotFound):
		done(w, r, back, flash{Message: fmt.Sprintf("not %s: no operator %q", verb, name), Error: true})
	case err != nil:
		c.logger.Error("console: operator not changed", "operator", name, "act", act, "err", err)
		done(w, r, back, flash{Message: fmt.Sprintf("not %s: the identities database cannot be written; try again later", verb), Error: true})
	case act == journal.ActOperatorDisable:
		done(w, r, back, flash{Message: fmt.Sprintf("disabled %s and ended their sessions", name)})
	case act == journal.ActOperatorResetMFA:
		done(w, r, back, flash{Message: fmt.Sprintf("removed the authenticator app of %s and ended their sessions: they enrol a new one at /console/enroll with their password", name)})
	default:
		done(w, r, back, flash{Message: fmt.Sprintf("enabled %s", name)})
	}
}

// --- blocks

type blockRow struct {
	contain.Block
	Key string // kind:value, the row's data-block
}

type blocksData struct {
	Enabled bool
	Blocks  []blockRow
	More    int
	Alerts  []alertRow
}

// The blocks page lists the maxAlerts newest alerts among the newest alertScan records.
const (
	maxAlerts = 50
	alertScan = 1 << 15
)

type alertRow struct {
	row
	Reasons []string
}

func (c *Console) blocksPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Blocks and alerts", Nav: "blocks"}
	d := &blocksData{Enabled: c.opts.Blocks != nil}
	p.Data = d
	if c.opts.Blocks != nil {
		now := c.now()
		for _, b := range c.opts.Blocks.List() {
			if b.Active(now) && (b.Kind == contain.BlockAddress || b.Kind == contain.BlockPrincipal) {
				d.Blocks = append(d.Blocks, blockRow{Block: b, Key: b.Kind + ":" + b.Value})
			}
		}
		slices.SortFunc(d.Blocks, func(a, b blockRow) int { return b.Created.Compare(a.Created) })
		if len(d.Blocks) > maxListed {
			d.More, d.Blocks = len(d.Blocks)-maxListed, d.Blocks[:maxListed]
		}
	}
	if c.st.Audit != nil {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		size, err := c.st.Audit.Size(ctx)
		var rows []row
		if err == nil {
			rows, _, err = newest(ctx, c.st.Audit, store.Query{Kind: string(audit.KindAlert)}, size, maxAlerts, alertScan)
		}
		if err != nil {
			c.logger.Error("console: alerts not read", "err", err)
			p.Flash = &flash{Message: "the alerts cannot be read from the audit log: try again later", Error: true}
		}
		for _, x := range rows {
			a := alertRow{row: x}
			if sr, err := c.st.Audit.Get(ctx, x.Seq); err == nil {
				if rec, err := audit.ParseRecord(sr.Data); err == nil {
					a.Reasons = rec.Reasons
				}
			}
			d.Alerts = append(d.Alerts, a)
		}
	}
	c.render(w, r, http.StatusOK, "blocks", s, p)
}

// blockForm reads and checks a block form's kind and target, as the admin API reads them.
func blockForm(r *http.Request) (kind, value string, err error) {
	kind = r.PostFormValue("kind")
	value, err = admin.CheckBlockTarget(kind, strings.TrimSpace(r.PostFormValue("target")), "the target")
	return kind, value, err
}

// putBlock blocks an address or suspends a principal, as POST /v1/blocks does; the containment
// records it with the operator as actor.
func (c *Console) putBlock(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/blocks"
	if c.opts.Blocks == nil {
		done(w, r, back, flash{Message: "containment is not configured", Error: true})
		return
	}
	kind, value, err := blockForm(r)
	if err != nil {
		done(w, r, back, flash{Message: "not blocked: " + err.Error(), Error: true})
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || len(reason) > maxReasonBytes {
		done(w, r, back, flash{Message: "not blocked: a reason is required (at most 1024 bytes), for the audit log", Error: true})
		return
	}
	now := c.now()
	b := contain.Block{Kind: kind, Value: value, Reason: reason, Actor: s.p.Subject, Created: now}
	if b.Expires, err = admin.BlockExpiry(strings.TrimSpace(r.PostFormValue("duration")), now, "duration", "leave it empty"); err != nil {
		done(w, r, back, flash{Message: "not blocked: " + err.Error(), Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if err := c.opts.Blocks.Put(ctx, b); err != nil {
		c.logger.Error("console: block not stored", "err", err)
		done(w, r, back, flash{Message: "not blocked: the block could not be stored; try again later", Error: true})
		return
	}
	what := "blocked address " + value
	if kind == contain.BlockPrincipal {
		what = "suspended principal " + value
	}
	done(w, r, back, flash{Message: what})
}

// liftBlock lifts a block or suspension, as POST /v1/blocks/lift does.
func (c *Console) liftBlock(w http.ResponseWriter, r *http.Request, s *session) {
	const back = "/console/blocks"
	if c.opts.Blocks == nil {
		done(w, r, back, flash{Message: "containment is not configured", Error: true})
		return
	}
	kind, value, err := blockForm(r)
	if err != nil {
		done(w, r, back, flash{Message: "not lifted: " + err.Error(), Error: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	err = c.opts.Blocks.Lift(ctx, kind, value, s.p.Subject)
	switch {
	case errors.Is(err, contain.ErrNoBlock):
		done(w, r, back, flash{Message: fmt.Sprintf("not lifted: no %s block on %s", kind, value), Error: true})
	case err != nil:
		c.logger.Error("console: block not lifted", "err", err)
		done(w, r, back, flash{Message: "not lifted: the block could not be lifted; try again later", Error: true})
	default:
		done(w, r, back, flash{Message: fmt.Sprintf("lifted the %s block on %s", kind, value)})
	}
}
