package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// go test -run '^$' -bench BenchmarkConsolePages -benchtime 20x ./internal/console/
//
// The console's pages over an audit log of a million records, appended through audit.Log (its
// group commit, hashing and checkpoints) by 512 writers: 50 principals and 20 tools taking
// turns over 24 hours, calls with their outcomes and some denials, and one principal ("rare")
// with a record every 100 000. Filling takes a minute or so; it is done once per run.

type benchGateway struct{}

func (benchGateway) Authenticate(*http.Request) (*authn.Principal, error) {
	return nil, authn.ErrNotFound
}
func (benchGateway) Record(context.Context, *http.Request, *authn.Principal, string, *audit.Record) error {
	return nil
}
func (benchGateway) HostOK(string) bool                                          { return true }
func (benchGateway) OriginOK(string) bool                                        { return true }
func (benchGateway) AuthFailed(context.Context, *http.Request, *authn.Rejection) {}

const benchRecords = 1_000_000

var (
	benchOnce sync.Once
	benchDir  string
	benchKey  string
	benchErr  error
	benchEnd  time.Time
	benchFill time.Duration
)

// fillMillion appends benchRecords records through audit.Log into a SQLite store.
func fillMillion() {
	ctx := context.Background()
	benchDir, benchErr = os.MkdirTemp("", "consolebench")
	if benchErr != nil {
		return
	}
	signer, verifier, err := audit.GenerateKey("mcpguard-bench")
	if err != nil {
		benchErr = err
		return
	}
	benchKey = verifier
	if err := os.WriteFile(filepath.Join(benchDir, "audit.key"), []byte(signer), 0o600); err != nil {
		benchErr = err
		return
	}
	st, err := sqlite.Open(ctx, filepath.Join(benchDir, "audit.db"), nil)
	if err != nil {
		benchErr = err
		return
	}
	s, err := audit.LoadSigner(filepath.Join(benchDir, "audit.key"))
	if err != nil {
		benchErr = err
		return
	}
	l, err := audit.Open(ctx, st, &audit.Options{Signer: s, CheckpointDir: filepath.Join(benchDir, "checkpoints")})
	if err != nil {
		benchErr = err
		return
	}
	benchEnd = time.Now().UTC()
	start := benchEnd.Add(-24 * time.Hour)
	step := 24 * time.Hour / benchRecords
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	t0 := time.Now()
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= benchRecords || firstErr.Load() != nil {
					return
				}
				p := fmt.Sprintf("user%d", i%50)
				if i%100_000 == 77 {
					p = "rare"
				}
				rec := &audit.Record{Time: start.Add(time.Duration(i) * step), Principal: p, Tool: fmt.Sprintf("bank.tool%d", i%20),
					RequestID: fmt.Sprintf("r%d", i/2), Decision: audit.DecisionAllow, AuthMethod: "api_key"}
				switch {
				case i%50 == 49:
					rec.Kind, rec.Decision, rec.Reasons = audit.KindPolicyDenial, audit.DecisionDeny, []string{"no rule allows it"}
				case i%2 == 0:
					rec.Kind, rec.Arguments = audit.KindToolCall, []byte(`{"account":"ACC-1","amount":125}`)
				default:
					rec.Kind, rec.DurationMicros, rec.Outcome = audit.KindOutcome, 800+i%5000, &audit.Outcome{Status: "ok"}
				}
				if _, err := l.Append(ctx, rec); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	benchFill = time.Since(t0)
	if e := firstErr.Load(); e != nil {
		benchErr = *e
	}
	if err := l.Close(); err != nil && benchErr == nil {
		benchErr = err
	}
	if err := st.Close(); err != nil && benchErr == nil {
		benchErr = err
	}
}

func BenchmarkConsolePages(b *testing.B) {
	benchOnce.Do(fillMillion)
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	b.Logf("filled %d records through audit.Log in %v", benchRecords, benchFill.Round(time.Millisecond))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(benchDir, "audit.db"), &sqlite.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := audit.LoadSigner(filepath.Join(benchDir, "audit.key"))
	if err != nil {
		b.Fatal(err)
	}
	ks, err := keystore.Open(ctx, filepath.Join(b.TempDir(), "identities.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	opStore, err := ks.Operators(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	var early atomic.Bool
	ops, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{
		Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
		Now: func() time.Time {
			if early.Load() {
				return time.Now().Add(-90 * time.Second)
			}
			return time.Now()
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	const pw = "correct horse battery staple"
	if err := ops.Create(ctx, "alice", pw, []string{"Desk"}); err != nil {
		b.Fatal(err)
	}
	e, err := ops.BeginEnrollment(ctx, "alice")
	if err != nil {
		b.Fatal(err)
	}
	early.Store(true)
	code, _ := totp.GenerateCode(e.Secret.Reveal(), time.Now().Add(-90*time.Second))
	err = ops.ConfirmEnrollment(ctx, "alice", code)
	early.Store(false)
	if err != nil {
		b.Fatal(err)
	}
	code, _ = totp.GenerateCode(e.Secret.Reveal(), time.Now())
	token, _, err := ops.Login(ctx, "alice", pw, code)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(benchGateway{}, Stores{Operators: ops, Keys: ks, OperatorStore: opStore, Audit: st, Verifier: audit.SignerVerifier(s)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{
		"/console/audit",
		"/console/audit?principal=user7",
		"/console/audit?tool=bank.tool3&decision=deny",
		"/console/audit?kind=policy_denial",
		"/console/audit?principal=rare",
		"/console/audit?since=" + benchEnd.Add(-2*time.Hour).Format("2006-01-02T15:04") + "&until=" + benchEnd.Add(-time.Hour).Format("2006-01-02T15:04"),
		"/console/audit/500000",
		"/console/blocks",
		"/console/charts",
	} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(path, "/console/"), "/", "_"), func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				c.charts.mu.Lock()
				c.charts.data = nil // every render reads the store
				c.charts.mu.Unlock()
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.AddCookie(&http.Cookie{Name: SessionCookie, Value: token.Reveal()})
				w := httptest.NewRecorder()
				t0 := time.Now()
				c.ServeHTTP(w, req)
				worst = max(worst, time.Since(t0))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: status %d:\n%.2000s", path, w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
