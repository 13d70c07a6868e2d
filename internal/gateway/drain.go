package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/journal"
)

// The admin journals (internal/journal) hold the administrative acts the CLI made — API keys,
// operators, logins, tool approvals — each written in the transaction of its change. The
// gateway, the audit log's only writer, drains them: at Start, then every journalDrainEvery
// while it runs, and once more when it closes, before the log does.
const (
	journalDrainEvery = time.Second
	// journalLease is how long a claimed entry stays with the gateway that claimed it before
	// another drain may take it (a gateway that died between claim and record).
	journalLease = time.Minute
)

// journalDrain is the gateway's state for draining the admin journals.
type journalDrain struct {
	tables   []*journal.Table
	auditHas func(ctx context.Context, requestID string, since time.Time) (bool, error)
	quit     chan struct{}
	quitOnce sync.Once
	done     sync.WaitGroup
}

func newJournalDrain(p *Parts) *journalDrain {
	return &journalDrain{tables: p.AdminJournals, auditHas: p.AuditHas, quit: make(chan struct{})}
}

// startDrain drains the admin journals now and then every journalDrainEvery until ctx ends or
// the gateway closes. Without an audit log nothing is drained: the entries wait in their
// journal for a gateway that records them.
func (g *Gateway) startDrain(ctx context.Context) {
	d := g.drain
	if g.audit == nil || len(d.tables) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	d.done.Add(1)
	go func() {
		defer d.done.Done()
		defer cancel()
		t := time.NewTicker(journalDrainEvery)
		defer t.Stop()
		for {
			g.drainJournals(ctx)
			select {
			case <-ctx.Done():
				return
			case <-d.quit:
				return
			case <-t.C:
			}
		}
	}()
}

// stopDrain stops the drain and waits for it, then drains once more, so that acts made up to
// the gateway's stop are recorded before the audit log closes.
func (g *Gateway) stopDrain() {
	d := g.drain
	if d == nil {
		return
	}
	d.quitOnce.Do(func() { close(d.quit) })
	d.done.Wait()
	if g.audit != nil && len(d.tables) > 0 {
		ctx, cancel := context.WithTimeout(g.base, 10*time.Second)
		defer cancel()
		g.drainJournals(ctx)
	}
}

// drainJournals records every pending entry of every journal.
func (g *Gateway) drainJournals(ctx context.Context) {
	for _, t := range g.drain.tables {
		if err := g.drainJournal(ctx, t); err != nil && ctx.Err() == nil {
			g.logger.Error("administrative acts not yet recorded in the audit log; retrying", "journal", t.Name(), "err", err)
		}
	}
}

func (g *Gateway) drainJournal(ctx context.Context, t *journal.Table) error {
	for {
		list, err := t.Claim(ctx, g.now(), journalLease, 0)
		if err != nil || len(list) == 0 {
			return err
		}
		for i, e := range list {
			if err := g.recordAct(ctx, t, e); err != nil {
				// Given back at once, so the next drain retries them (checking the log first).
				for _, r := range list[i:] {
					_ = t.Release(context.WithoutCancel(ctx), r.ID)
				}
				return err
			}
		}
	}
}

// recordAct appends one journal entry to the audit log and marks it recorded. An entry claimed
// before (Attempts > 1) may already be in the log — appended, then not marked — so the log is
// searched for its request_id first: each act is recorded exactly once.
func (g *Gateway) recordAct(ctx context.Context, t *journal.Table, e *journal.Entry) error {
	if e.Attempts > 1 && g.drain.auditHas != nil {
		found, err := g.drain.auditHas(ctx, e.ID, e.Time)
		if err != nil {
			return err
		}
		if found {
			return t.Recorded(ctx, e.ID, -1, g.now())
		}
	}
	seq, err := g.audit.Append(ctx, actRecord(e))
	if err != nil {
		return err
	}
	return t.Recorded(ctx, e.ID, seq, g.now())
}

// actRecord is the audit record of an administrative act: kind admin (auth_failure for a
// refused password or login), the actor as principal, roles and auth_method, the entry's id as
// request_id, and the act, its target and result in detail.
func actRecord(e *journal.Entry) *audit.Record {
	rec := &audit.Record{
		Time: e.Time, Kind: audit.KindAdmin, RequestID: e.ID,
		Principal: e.Actor.Principal, Roles: e.Actor.Roles, AuthMethod: e.Actor.AuthMethod,
		Tool: e.Target.Tool, Decision: audit.DecisionAllow, Outcome: &audit.Outcome{Status: "ok"},
		Detail: e.Detail(),
	}
	if e.Result != journal.ResultOK {
		rec.Decision, rec.Reasons, rec.Outcome = audit.DecisionDeny, []string{e.Reason}, &audit.Outcome{Status: "error", Error: e.Reason}
		if a := e.Actor.AuthMethod; a == journal.AuthPassword || a == journal.AuthPasswordTOTP {
			rec.Kind = audit.KindAuthFailure
		}
	}
	return rec
}
