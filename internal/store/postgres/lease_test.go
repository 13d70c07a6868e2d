package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

func rec(seq int64, who string) store.Record {
	return store.Record{
		Seq: seq, Time: time.Unix(1_800_000_000+seq, 0).UTC(), Kind: "call", Principal: who, Tool: "fin.quote",
		Decision: "allow", RequestID: fmt.Sprintf("%s-%d", who, seq), Data: fmt.Appendf(nil, `{"who":%q,"seq":%d}`, who, seq),
		Hashes: bytes.Repeat([]byte{byte(seq)}, 32), Subjects: []string{"subject-" + who},
	}
}

func open(t *testing.T, d, schema string, o postgres.Options) *postgres.Store {
	t.Helper()
	o.Schema = schema
	s, err := postgres.Open(context.Background(), d, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A named log passes the whole store contract, in a schema another log writes too.
func TestContractNamedLog(t *testing.T) {
	d := dsn(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		sc := schema(t, d)
		other := open(t, d, sc, postgres.Options{Log: "other"})
		if err := other.Append(context.Background(), []store.Record{rec(0, "other"), rec(1, "other")}); err != nil {
			t.Fatal(err)
		}
		return open(t, d, sc, postgres.Options{Log: "gw-1"})
	})
}

// Instances writing their own logs into one database never refuse each other's appends, and
// each reads only its own records, checkpoints and subject index.
func TestLogsShareADatabase(t *testing.T) {
	d := dsn(t)
	sc := schema(t, d)
	ctx := context.Background()
	names := []string{"gw-1", "gw-2", "gw-3"}
	stores := make([]*postgres.Store, len(names))
	for i, n := range names {
		stores[i] = open(t, d, sc, postgres.Options{Log: n, Lease: true})
	}
	const batches, per = 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var recs []store.Record
				for j := range per {
					recs = append(recs, rec(int64(b*per+j), names[i]))
				}
				if err := s.Append(ctx, recs); err != nil {
					errs <- fmt.Errorf("%s: %w", names[i], err)
					return
				}
			}
			if err := s.AddCheckpoint(ctx, store.Checkpoint{Size: batches * per, Time: time.Now(), Note: []byte(names[i])}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, s := range stores {
		n, err := s.Size(ctx)
		if err != nil || n != batches*per {
			t.Errorf("%s: size %d, %v; want %d", names[i], n, err, batches*per)
		}
		err = s.Scan(ctx, 0, func(r *store.Record) error {
			if r.Principal != names[i] {
				return fmt.Errorf("%s read a record of %s", names[i], r.Principal)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		cps, err := s.Checkpoints(ctx)
		if err != nil || len(cps) != 1 || string(cps[0].Note) != names[i] {
			t.Errorf("%s: checkpoints %v, %v", names[i], cps, err)
		}
		found := 0
		err = s.Search(ctx, store.Query{AfterSeq: -1, Subject: "subject-" + names[(i+1)%3]}, func(*store.Record) error { found++; return nil })
		if err != nil || found != 0 {
			t.Errorf("%s: a subject search found %d records of another log (%v)", names[i], found, err)
		}
	}
	logs, err := stores[0].Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 || logs[0].Name != "gw-1" || logs[2].Size != batches*per || logs[1].Holder == "" || logs[1].Expires.IsZero() {
		t.Errorf("logs: %+v", logs)
	}
	// A log whose instance stopped cleanly is listed without a holder.
	stores[1].Close()
	logs, err = stores[0].Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 || logs[1].Holder != "" || !logs[1].Expires.IsZero() || logs[1].Size != batches*per {
		t.Errorf("logs after gw-2 stopped: %+v", logs)
	}
}

// A second instance configured with a log a live instance writes is refused, naming the
// holder, and the first keeps writing.
func TestLeaseHeldRefusesASecondWriter(t *testing.T) {
	d := dsn(t)
	sc := schema(t, d)
	ctx := context.Background()
	a := open(t, d, sc, postgres.Options{Log: "gw-1", Lease: true, LeaseTTL: 600 * time.Millisecond})
	_, err := postgres.Open(ctx, d, &postgres.Options{Schema: sc, Log: "gw-1", Lease: true, LeaseTTL: 600 * time.Millisecond})
	if !errors.Is(err, postgres.ErrLeaseHeld) || !strings.Contains(err.Error(), "give each instance its own audit.log") {
		t.Fatalf("a second writer of a live log: %v", err)
	}
	// One that does not wait for the lease fails on its first write, and writes nothing.
	b := open(t, d, sc, postgres.Options{Log: "gw-1"})
	if err := b.Append(ctx, []store.Record{rec(0, "b")}); !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("append without the lease: %v", err)
	}
	if err := a.Append(ctx, []store.Record{rec(0, "a")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.Size(ctx); n != 1 {
		t.Errorf("size %d after one append", n)
	}
}

// A holder cut off from the database (it could not renew, its lease expired and another
// instance took it) can never write again: its appends and checkpoints are fenced by the token
// in the database, so two checkpoints of one size can never differ.
func TestFencedAfterTakeover(t *testing.T) {
	d := dsn(t)
	sc := schema(t, d)
	ctx := context.Background()
	a := open(t, d, sc, postgres.Options{Log: "gw-1", Lease: true})
	if err := a.Append(ctx, []store.Record{rec(0, "a"), rec(1, "a")}); err != nil {
		t.Fatal(err)
	}
	// The partition: a's lease expires without a knowing.
	expire(t, d, sc, "gw-1")
	b := open(t, d, sc, postgres.Options{Log: "gw-1", Lease: true})
	if err := a.Append(ctx, []store.Record{rec(2, "a")}); !errors.Is(err, postgres.ErrLeaseLost) {
		t.Fatalf("append by the old holder after a takeover: %v", err)
	}
	if err := a.AddCheckpoint(ctx, store.Checkpoint{Size: 2, Time: time.Now(), Note: []byte("a")}); !errors.Is(err, postgres.ErrLeaseLost) {
		t.Fatalf("checkpoint by the old holder after a takeover: %v", err)
	}
	n, err := b.Size(ctx)
	if err != nil || n != 2 {
		t.Fatalf("the new holder sees size %d, %v; want 2", n, err)
	}
	if err := b.Append(ctx, []store.Record{rec(2, "b")}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddCheckpoint(ctx, store.Checkpoint{Size: 3, Time: time.Now(), Note: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(ctx, 2)
	if err != nil || r.Principal != "b" {
		t.Errorf("record 2: %+v, %v", r, err)
	}
	// The old holder stays fenced even once the new one has released the lease.
	b.Close()
	if err := a.Append(ctx, []store.Record{rec(3, "a")}); !errors.Is(err, postgres.ErrLeaseLost) {
		t.Errorf("append by the old holder after the new one closed: %v", err)
	}
}

// An instance killed without releasing its lease leaves it to expire; its successor waits for
// that, takes it, and continues the log.
func TestLeaseOfADeadHolderIsTaken(t *testing.T) {
	d := dsn(t)
	sc := schema(t, d)
	ctx := context.Background()
	a := open(t, d, sc, postgres.Options{Log: "gw-1"})
	if err := a.Append(ctx, []store.Record{rec(0, "a")}); err != nil {
		t.Fatal(err)
	}
	// A holder that died a moment ago: its lease runs for another 300 ms, unrenewed.
	exec(t, d, "UPDATE "+sc+".audit_logs SET holder = 'dead/1/x', token = token + 1, expires_at = now() + interval '300 milliseconds' WHERE name = 'gw-1'")
	b := open(t, d, sc, postgres.Options{Log: "gw-1", Lease: true, LeaseTTL: time.Second})
	if err := b.Append(ctx, []store.Record{rec(1, "b")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Size(ctx); n != 2 {
		t.Errorf("size %d, want 2", n)
	}
}

// A database written by a release with one log per database is migrated in place: its records
// become the default log, which reads and appends on; a schema newer than this build is
// refused with a message that says what to do.
func TestMigrations(t *testing.T) {
	d := dsn(t)
	sc := schema(t, d)
	ctx := context.Background()
	exec(t, d, "CREATE SCHEMA "+sc+"; CREATE TABLE "+sc+".mcpguard_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); INSERT INTO "+sc+".mcpguard_migrations (version) VALUES (1)")
	exec(t, d, fmt.Sprintf(postgres.Migrations[0], sc))
	exec(t, d, "INSERT INTO "+sc+".audit_records VALUES (0, 1, 'call', 'alice', 'fin.quote', 'allow', 'r0', '\\x7b7d', '\\x00'), (1, 2, 'call', 'bob', 'fin.quote', 'deny', 'r1', '\\x7b7d', '\\x01')")
	exec(t, d, "INSERT INTO "+sc+".audit_checkpoints VALUES (2, 3, 'note')")
	s := open(t, d, sc, postgres.Options{})
	n, err := s.Size(ctx)
	if err != nil || n != 2 {
		t.Fatalf("size after migration %d, %v; want 2", n, err)
	}
	if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 1 || cps[0].Size != 2 {
		t.Errorf("checkpoints after migration %v, %v", cps, err)
	}
	if err := s.Append(ctx, []store.Record{rec(2, "carol")}); err != nil {
		t.Fatal(err)
	}
	exec(t, d, fmt.Sprintf("INSERT INTO %s.mcpguard_migrations (version) VALUES (%d)", sc, postgres.SchemaVersion+1))
	_, err = postgres.Open(ctx, d, &postgres.Options{Schema: sc})
	if err == nil || !strings.Contains(err.Error(), "newer than this mcpguard") {
		t.Errorf("a newer schema: %v", err)
	}
}

func TestBadLogName(t *testing.T) {
	for _, n := range []string{"GW1", "gw 1", "-gw", "gw/1", strings.Repeat("g", 64), "gw1\u200b"} {
		if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/x", &postgres.Options{Log: n}); err == nil || !strings.Contains(err.Error(), "log name") {
			t.Errorf("log name %q: %v", n, err)
		}
	}
}

func exec(t *testing.T, d, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func expire(t *testing.T, d, sc, log string) {
	exec(t, d, "UPDATE "+sc+".audit_logs SET expires_at = '-infinity' WHERE name = '"+log+"'")
}
