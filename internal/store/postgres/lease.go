package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/store"
)

// ErrLeaseLost is returned by every write once another holder has taken the log's writer lease:
// this store's view of the log may be stale, so it never writes again; reopen it.
var ErrLeaseLost = errors.New("the audit log's writer lease was taken by another holder")

// ErrLeaseHeld is returned when a live holder has the writer lease of the log.
var ErrLeaseHeld = errors.New("the audit log's writer lease is held by another instance")

// lease is this store's hold on its log's writer lease (the audit_logs row of the log): a
// holder name, and the fencing token its takeover set. Every append and checkpoint is fenced by
// the token in the database itself, so a holder that lost the lease (it paused, or a network
// partition kept it from renewing) can never write again, whatever its clock says.
type lease struct {
	ttl    time.Duration
	mu     sync.Mutex
	holder string
	token  int64 // 0: not held
	lost   bool
	stop   chan struct{}
	done   chan struct{}
}

// holderName names this process in the lease row: host, process id and a random part, so that
// a second process with the same configuration is a different holder.
func holderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// writerToken returns the fencing token of the lease, taking the lease first when this store
// does not hold it yet (without waiting: a live holder makes it fail).
func (s *Store) writerToken(ctx context.Context) (int64, error) {
	if s.view {
		return 0, fmt.Errorf("log %q is open read-only here (a view of another instance's log)", s.log)
	}
	s.lease.mu.Lock()
	lost, token := s.lease.lost, s.lease.token
	s.lease.mu.Unlock()
	switch {
	case lost:
		return 0, ErrLeaseLost
	case token != 0:
		return token, nil
	}
	if err := s.acquire(ctx, false); err != nil {
		return 0, err
	}
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	return s.lease.token, nil
}

// fenced records that a write found another holder's token, and returns ErrLeaseLost.
func (s *Store) fenced() error {
	s.lease.mu.Lock()
	s.lease.lost = true
	s.lease.mu.Unlock()
	s.logger.Error("audit log: another holder took the writer lease; this instance writes nothing more to the log", "log", s.log)
	return ErrLeaseLost
}

// acquire takes the log's writer lease: it exists, and its holder's lease has expired (or it has
// none). With wait, a lease held by another holder is waited for until it expires, as long as
// its holder does not renew it (a holder that died leaves it to expire); without, it fails.
func (s *Store) acquire(ctx context.Context, wait bool) error {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	if s.lease.lost {
		return ErrLeaseLost
	}
	if s.lease.token != 0 {
		return nil
	}
	if s.lease.holder == "" {
		s.lease.holder = holderName()
	}
	ttl := fmt.Sprintf("%d milliseconds", s.lease.ttl.Milliseconds())
	deadline := time.Now().Add(s.lease.ttl + s.lease.ttl/2)
	logged := false
	for {
		var token int64
		var holder string
		var expires time.Time
		err := s.with(ctx, func(c *pgx.Conn) error {
			if _, err := c.Exec(ctx, "INSERT INTO "+s.table("audit_logs")+" (name) VALUES ($1) ON CONFLICT DO NOTHING", s.log); err != nil {
				return err
			}
			err := c.QueryRow(ctx, "UPDATE "+s.table("audit_logs")+" SET holder = $2, token = token + 1, expires_at = now() + $3::interval "+
				"WHERE name = $1 AND (expires_at < now() OR holder = '') RETURNING token", s.log, s.lease.holder, ttl).Scan(&token)
			if errors.Is(err, pgx.ErrNoRows) {
				return c.QueryRow(ctx, "SELECT holder, expires_at FROM "+s.table("audit_logs")+" WHERE name = $1", s.log).Scan(&holder, &expires)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("take the writer lease of audit log %q: %w", s.log, err)
		}
		if token != 0 {
			s.lease.token = token
			s.lease.stop, s.lease.done = make(chan struct{}), make(chan struct{})
			go s.renew(token, s.lease.stop, s.lease.done)
			s.logger.Info("audit log: writer lease taken", "log", s.log, "token", token, "holder", s.lease.holder)
			return nil
		}
		if !wait || time.Now().After(deadline) {
			return fmt.Errorf("%w: audit log %q is written by %s (lease renewed until %s); give each instance its own audit.log name",
				ErrLeaseHeld, s.log, holder, expires.UTC().Format(time.RFC3339))
		}
		if !logged {
			s.logger.Warn("audit log: waiting for the writer lease, held by another holder (a holder that died leaves it to expire)",
				"log", s.log, "holder", holder, "expires", expires.UTC().Format(time.RFC3339))
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.lease.ttl / 10):
		}
	}
}

// renew extends the lease every third of its lifetime, until stop or until the lease is lost.
// A renewal that cannot reach the database is retried; the lease may then expire and be taken,
// and the fencing token keeps this holder from writing after that.
func (s *Store) renew(token int64, stop, done chan struct{}) {
	defer close(done)
	ttl := fmt.Sprintf("%d milliseconds", s.lease.ttl.Milliseconds())
	t := time.NewTicker(s.lease.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lease.ttl/3)
		var n int64
		err := s.with(ctx, func(c *pgx.Conn) error {
			tag, err := c.Exec(ctx, "UPDATE "+s.table("audit_logs")+" SET expires_at = now() + $3::interval WHERE name = $1 AND token = $2", s.log, token, ttl)
			n = tag.RowsAffected()
			return err
		})
		cancel()
		switch {
		case err != nil:
			s.logger.Warn("audit log: renewing the writer lease failed; retrying", "log", s.log, "err", err)
		case n == 0:
			_ = s.fenced()
			return
		}
	}
}

// release ends the lease so that another holder can take it at once.
func (s *Store) release() {
	s.lease.mu.Lock()
	token, stop, done := s.lease.token, s.lease.stop, s.lease.done
	s.lease.token = 0
	s.lease.mu.Unlock()
	if token == 0 {
		return
	}
	close(stop)
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "UPDATE "+s.table("audit_logs")+" SET holder = '', expires_at = '-infinity' WHERE name = $1 AND token = $2", s.log, token)
		return err
	})
}

// LogInfo describes one log of the database.
type LogInfo struct {
	Name    string
	Size    int64
	Holder  string // empty when no instance holds the lease
	Expires time.Time
}

// Logs returns the logs the database holds, by name.
func (s *Store) Logs(ctx context.Context) ([]LogInfo, error) {
	var out []LogInfo
	err := s.with(ctx, func(c *pgx.Conn) error {
		// A released lease expires at -infinity, which has no time.Time: it reads as no holder.
		rows, err := c.Query(ctx, "SELECT name, size, holder, CASE WHEN holder = '' THEN NULL ELSE expires_at END FROM "+s.table("audit_logs")+" ORDER BY name COLLATE \"C\"")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l LogInfo
			var expires *time.Time
			if err := rows.Scan(&l.Name, &l.Size, &l.Holder, &expires); err != nil {
				return err
			}
			if expires != nil {
				l.Expires = *expires
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list the audit logs: %w", err)
	}
	return out, nil
}

// Schema returns the schema holding the tables.
func (s *Store) Schema() string { return s.schema }

// LogName implements store.Deployment.
func (s *Store) LogName() string { return s.log }

// OtherLogs implements store.Deployment: read-only views of the other logs, sharing this
// store's connections; closing one closes nothing.
func (s *Store) OtherLogs(ctx context.Context) ([]store.NamedLog, error) {
	logs, err := s.Logs(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.NamedLog
	for _, l := range logs {
		if l.Name == s.log {
			continue
		}
		v := &Store{cfg: s.cfg, schema: s.schema, log: l.Name, conns: s.conns, logger: s.logger, closed: s.closed, view: true}
		out = append(out, store.NamedLog{Name: l.Name, Store: v})
	}
	return out, nil
}
