package gateway

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/store/backend"
)

// testOpenStore is the tests' wiring of the audit store, the choice cmd/mcpguard makes. The
// gateway itself imports no backend; tests may.
var testOpenStore = backend.Opener(nil)

// TestNewWithoutOpenStore: a configured audit log with no backend chosen is a construction error,
// not a gateway that cannot record.
func TestNewWithoutOpenStore(t *testing.T) {
	section, db, _ := auditConfig(t)
	cfg, err := config.Parse([]byte(`listen: 127.0.0.1:0
upstreams:
  - name: search
    sse: {url: "http://127.0.0.1:9/sse"}
`+section), "audit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), cfg, nil)
	if err == nil {
		g.Close()
		t.Fatal("New accepted an audit configuration without Options.OpenStore")
	}
	if !strings.Contains(err.Error(), "OpenStore") {
		t.Errorf("error %q does not name Options.OpenStore", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the audit database %s was touched: %v", db, err)
	}
}
