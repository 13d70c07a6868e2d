package wiring

import (
	"context"
	"errors"
	"time"

	"github.com/mcpguard/mcpguard/internal/store"
)

// journals hands the gateway the admin journals of the databases the CLI changes (identities,
// tool pins), to drain into the audit log, and a way to find a drained entry's record in the
// log's store.
func (b *builder) journals() {
	if b.keys != nil {
		b.p.AdminJournals = append(b.p.AdminJournals, b.keys.Journal())
	}
	if b.p.Pins != nil {
		b.p.AdminJournals = append(b.p.AdminJournals, b.p.Pins.Journal())
	}
	if st := b.auditStore; st != nil {
		b.p.AuditHas = func(ctx context.Context, requestID string, since time.Time) (bool, error) {
			return auditHas(ctx, st, requestID, since)
		}
	}
}

var errFound = errors.New("found")

// auditHas reports whether st holds a record with requestID at or after since.
func auditHas(ctx context.Context, st store.Store, requestID string, since time.Time) (bool, error) {
	err := st.Search(ctx, store.Query{Since: since, AfterSeq: -1}, func(r *store.Record) error {
		if r.RequestID == requestID {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}
