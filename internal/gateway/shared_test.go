package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// sharedRedis returns the test Redis (MCPGUARD_TEST_REDIS) and a key prefix of this test's own,
// whose keys it deletes at the end.
func sharedRedis(t *testing.T) (addr, prefix string) {
	t.Helper()
	addr = os.Getenv("MCPGUARD_TEST_REDIS")
	if addr == "" {
		testenv.Missing(t, "MCPGUARD_TEST_REDIS is not set: point it at a Redis server (127.0.0.1:6379) to test state shared between instances")
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		testenv.Missing(t, "no Redis at MCPGUARD_TEST_REDIS=%s: %v", addr, err)
	} else {
		c.Close()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix = "mcpguard-test-" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() { flushPrefix(t, addr, prefix) })
	return addr, prefix
}

// flushPrefix deletes every key under prefix: what FLUSHALL does to this test's state, without
// touching anyone else's.
func flushPrefix(t *testing.T, addr, prefix string) {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Elements) > 0 {
			if err := c.Do(ctx, c.B().Del().Key(e.Elements...).Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

// TestLimitsAndBlocksAcrossInstances: two gateways sharing Redis and an identity database.
// One principal calling both at once gets at most its limit served in all; the rest get 429
// and never reach the upstream. Bad keys against one instance block the address on the other
// too; the block survives Redis losing every key, and a third instance started afterwards
// reads it from the identity database.
func TestLimitsAndBlocksAcrossInstances(t *testing.T) {
	addr, prefix := sharedRedis(t)
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	const limit = 30
	section := fmt.Sprintf(`api_keys_database: %q
containment:
  redis: {address: %q, prefix: %q}
  rate_limits:
    per_principal: {calls_per_minute: %d, burst: %d}
`, keysDB, addr, prefix, limit, limit)
	a, b := newTestGateway(t, section), newTestGateway(t, section)
	key, id := newKey(t, keysDB, "agent-7")

	var served, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := a.url
			if i%2 == 1 {
				url = b.url
			}
			h := modernHeaders("tools/call", "rec.echo")
			h["Authorization"] = "Bearer " + key
			st, hdr, _ := post(t, url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"shared-%d"},%s}}`, i, i, modernMeta))
			switch st {
			case http.StatusOK:
				served.Add(1)
			case http.StatusTooManyRequests:
				if hdr.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				limited.Add(1)
			default:
				t.Errorf("call %d: status %d", i, st)
			}
		}()
	}
	wg.Wait()
	// The bucket refills at half a call a second while the calls run: one more may be served.
	if n := served.Load(); n < limit || n > limit+1 {
		t.Errorf("served %d of %d calls across two instances, want %d (+1 for the refill)", n, 2*limit, limit)
	}
	upstream := strings.Count(readRecord(t, a.record), "shared-") + strings.Count(readRecord(t, b.record), "shared-")
	if upstream != int(served.Load()) {
		t.Errorf("the upstreams saw %d calls, the clients were served %d", upstream, served.Load())
	}

	// Brute force on a, refused on b.
	wrong := "mcpg_" + id + "_" + strings.Repeat("A", 43)
	for range 5 {
		post(t, a.url, map[string]string{"Authorization": "Bearer " + wrong}, authInitBody)
	}
	start := time.Now()
	eventually(t, "the block reaching the other instance", func() bool {
		st, _, _ := post(t, b.url, map[string]string{"Authorization": "Bearer " + key}, authInitBody)
		return st == http.StatusForbidden
	})
	t.Logf("block propagated to the other instance in %v", time.Since(start))

	flushPrefix(t, addr, prefix)
	for _, g := range []*testGateway{a, b} {
		if st, _, _ := post(t, g.url, map[string]string{"Authorization": "Bearer " + key}, authInitBody); st != http.StatusForbidden {
			t.Errorf("after Redis lost its keys: status %d, want 403 (the block holds)", st)
		}
	}
	c := newTestGateway(t, section)
	if st, _, _ := post(t, c.url, map[string]string{"Authorization": "Bearer " + key}, authInitBody); st != http.StatusForbidden {
		t.Errorf("a new instance: status %d, want 403 (the block is in the identity database)", st)
	}
	if err := c.g.guard.Lift(t.Context(), contain.BlockAddress, "127.0.0.1", "operator-ann"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lift reaching the first instance", func() bool {
		st, _, _ := post(t, a.url, map[string]string{"Authorization": "Bearer " + key}, authInitBody)
		return st == http.StatusOK
	})
}
