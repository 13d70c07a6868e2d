package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/backend"
)

// subjectSealer returns the sealer of the data subjects the compliance section names, or nil
// when it names none.
func subjectSealer(st store.Store, cc *config.Compliance, now func() time.Time) (*gdpr.Subjects, error) {
	if cc == nil || len(cc.Subjects) == 0 {
		return nil, nil
	}
	comp, ok := st.(store.Compliance)
	if !ok {
		return nil, fmt.Errorf("compliance.subjects: the audit store %T keeps no subject keys", st)
	}
	tools := map[string][]string{}
	for _, s := range cc.Subjects {
		tools[s.Tool] = append(tools[s.Tool], s.Arguments...)
	}
	subjects, err := gdpr.NewSubjects(comp, []byte(cc.SubjectKey.Reveal()), &gdpr.Options{Tools: tools, Now: now})
	if err != nil {
		return nil, fmt.Errorf("compliance.subject_key: %w", err)
	}
	return subjects, nil
}

// RetentionPolicies returns the configured retention at now, one policy per kind, in a stable
// order.
func RetentionPolicies(cc *config.Compliance, now time.Time) ([]gdpr.Policy, error) {
	var out []gdpr.Policy
	if cc == nil {
		return nil, nil
	}
	kinds := make([]string, 0, len(cc.Retention))
	for k := range cc.Retention {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		r, err := config.ParseRetention(cc.Retention[k])
		if err != nil {
			return nil, fmt.Errorf("compliance.retention.%s: %w", k, err)
		}
		out = append(out, gdpr.Policy{Kind: audit.Kind(k), Retention: cc.Retention[k], Before: r.Before(now)})
	}
	return out, nil
}

// retentionTimeout bounds one application of the retention.
const retentionTimeout = 10 * time.Minute

// ScheduleActor is the actor of the retention the gateway applies on its schedule: the
// configuration, not a person.
var ScheduleActor = gdpr.Actor{Principal: "mcpguard", AuthMethod: "configuration", Via: "schedule"}

// applyRetention applies the retention every cc.RetentionEvery, first right away, until the log
// closes. A failed run is logged and tried again at the next tick.
func applyRetention(l *audit.Log, svc *gdpr.Service, cc *config.Compliance, now func() time.Time, logger *slog.Logger) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	every := cc.RetentionEvery
	if every <= 0 {
		every = config.DefaultRetentionEvery
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-l.Closed():
			return
		case <-t.C:
		}
		at := now()
		policies, err := RetentionPolicies(cc, at)
		if err == nil {
			var res *gdpr.PruneResult
			ctx, cancel := context.WithTimeout(context.Background(), retentionTimeout)
			res, err = svc.Prune(ctx, at, policies, ScheduleActor)
			cancel()
			if err == nil && res.Pruned > 0 {
				logger.Info("audit retention applied", "pruned", res.Pruned, "held", res.Held, "retention_records", res.Records)
			}
		}
		if err != nil {
			logger.Error("audit retention not applied; tried again at the next run", "err", err)
		}
		t.Reset(every)
	}
}

// Compliance is the audit log opened by a command that serves data subjects, legal holds or
// retention (mcpguard gdpr, hold, audit prune): the store, the log, and the service over them.
// The log has one writer: run these commands while the gateway is stopped, or use the admin API.
type Compliance struct {
	Store   store.Store
	Log     *audit.Log
	Service *gdpr.Service
	Config  *config.Config
}

// OpenCompliance opens the audit log of cfg for a command, with the data subjects and retention
// of its compliance section. Sinks and witnesses are not opened: the gateway's do not see the
// records the command appends until they are exported by other means.
func OpenCompliance(ctx context.Context, cfg *config.Config, logger *slog.Logger, now func() time.Time) (*Compliance, error) {
	if cfg.Audit == nil {
		return nil, fmt.Errorf("the configuration has no audit section: there is no audit log to act on")
	}
	if cfg.Compliance == nil {
		return nil, fmt.Errorf("the configuration has no compliance section: no data subjects, retention or legal holds are configured")
	}
	a := cfg.Audit
	st, err := backend.Open(ctx, a.Database.Reveal(), backend.Options{Logger: logger, Log: a.Log, Schema: a.Schema, LeaseTTL: a.LeaseTTL})
	if err != nil {
		return nil, fmt.Errorf("audit.database: %w", err)
	}
	origin, checkpointDir := audit.Named(a.Log, a.CheckpointDir)
	fail := func(err error) (*Compliance, error) {
		st.Close()
		return nil, err
	}
	signer, err := audit.LoadSigner(a.SigningKeyFile)
	if err != nil {
		return fail(fmt.Errorf("audit.signing_key_file: %w", err))
	}
	red, err := redact.New([]byte(a.RedactionKey.Reveal()), &redact.Options{ExtraSensitiveKeys: a.SensitiveKeys, AllowKeys: a.KeepInClear})
	if err != nil {
		return fail(fmt.Errorf("audit.redaction_key: %w", err))
	}
	subjects, err := subjectSealer(st, cfg.Compliance, now)
	if err != nil {
		return fail(err)
	}
	opts := &audit.Options{Logger: logger, Redactor: red, Signer: signer, Origin: origin, CheckpointDir: checkpointDir,
		CheckpointEvery: int64(a.CheckpointEvery), CheckpointInterval: a.CheckpointInterval, Now: now}
	if subjects != nil {
		opts.Sealer = subjects
	}
	l, err := audit.Open(ctx, st, opts)
	if err != nil {
		return fail(fmt.Errorf("audit: %w (the gateway writes this log: stop it, or use the admin API)", err))
	}
	svc, err := gdpr.NewService(st, subjects, l, &gdpr.ServiceOptions{Logger: logger, Now: now})
	if err == nil {
		_, err = svc.Neutralise(ctx)
	}
	if err != nil {
		l.Close()
		return fail(err)
	}
	return &Compliance{Store: st, Log: l, Service: svc, Config: cfg}, nil
}

// Close signs the final checkpoint and closes the log and the store.
func (c *Compliance) Close() error {
	err := c.Log.Close()
	if serr := c.Store.Close(); err == nil {
		err = serr
	}
	return err
}

// subjectsAPI serves the admin API's data-subject routes with the gateway's own log.
type subjectsAPI struct{ svc *gdpr.Service }

func (s subjectsAPI) Export(ctx context.Context, subject, received string, p *authn.Principal) ([]byte, error) {
	actor := apiActor(p)
	var err error
	if actor.Received, err = gdpr.ParseReceived(received); err != nil {
		return nil, subjectRefusal(err, subject)
	}
	ex, err := s.svc.Export(ctx, subject, actor)
	if err != nil {
		return nil, subjectRefusal(err, subject)
	}
	return json.Marshal(ex)
}

func (s subjectsAPI) Erase(ctx context.Context, subject, reason, received string, p *authn.Principal) ([]byte, error) {
	actor := apiActor(p)
	var err error
	if actor.Received, err = gdpr.ParseReceived(received); err != nil {
		return nil, subjectRefusal(err, subject)
	}
	e, err := s.svc.Erase(ctx, subject, reason, actor)
	if err != nil {
		return nil, subjectRefusal(err, subject)
	}
	return json.Marshal(map[string]any{"commitment": e.Commitment, "keys_destroyed": e.Keys, "record_seq": e.RecordSeq})
}

func (s subjectsAPI) Holds(ctx context.Context) ([]byte, error) {
	hs, err := s.svc.Holds(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]holdJSON, 0, len(hs))
	for _, h := range hs {
		out = append(out, holdOf(h))
	}
	return json.Marshal(map[string]any{"holds": out})
}

func (s subjectsAPI) PlaceHold(ctx context.Context, req admin.HoldRequest, p *authn.Principal) ([]byte, error) {
	h, err := s.svc.AddHold(ctx, gdpr.HoldRequest{Principal: req.Principal, Subject: req.Subject, From: req.From, Until: req.Until, Reason: req.Reason}, apiActor(p))
	if err != nil {
		return nil, subjectRefusal(err, req.Subject)
	}
	return json.Marshal(holdOf(h))
}

func (s subjectsAPI) ReleaseHold(ctx context.Context, id string, p *authn.Principal) ([]byte, error) {
	err := s.svc.ReleaseHold(ctx, id, apiActor(p))
	if errors.Is(err, store.ErrNotFound) {
		return nil, &admin.SubjectRefusal{Status: http.StatusNotFound, Reason: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"hold": id, "released_by": p.Subject})
}

// apiActor is the actor of a request made through the admin API.
func apiActor(p *authn.Principal) gdpr.Actor {
	return gdpr.Actor{Principal: p.Subject, Roles: p.Roles, AuthMethod: "operator", Via: "admin_api"}
}

// subjectRefusal maps a refused data-subject request to what the admin API answers; anything
// else (a store) stays an error, answered 503 and logged.
func subjectRefusal(err error, subject string) error {
	switch {
	case errors.Is(err, gdpr.ErrNotConfigured), errors.Is(err, gdpr.ErrNoSubject):
		return &admin.SubjectRefusal{Status: http.StatusNotFound, Reason: err.Error()}
	case errors.Is(err, gdpr.ErrHeld):
		return &admin.SubjectRefusal{Status: http.StatusConflict, Reason: err.Error()}
	case errors.Is(err, gdpr.ErrInvalid), subject != "" && gdpr.CheckSubject(subject) != nil:
		return &admin.SubjectRefusal{Status: http.StatusBadRequest, Reason: err.Error()}
	}
	return err
}

// holdJSON is a hold as the admin API shows it: a subject hold by its commitment only.
type holdJSON struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Value      string    `json:"value,omitempty"`
	From       time.Time `json:"from,omitzero"`
	Until      time.Time `json:"until,omitzero"`
	Reason     string    `json:"reason"`
	Actor      string    `json:"actor"`
	Created    time.Time `json:"created"`
	Released   time.Time `json:"released,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
}

func holdOf(h store.Hold) holdJSON {
	return holdJSON{ID: h.ID, Kind: h.Kind, Value: h.Value, From: h.From, Until: h.Until, Reason: h.Reason,
		Actor: h.Actor, Created: h.Created, Released: h.Released, ReleasedBy: h.ReleasedBy}
}
