package gateway

import (
	"context"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
)

// newFromConfig builds a gateway as the program does: its parts from the configuration
// (wiring.Build, which opens the stores; the gateway itself opens none), then the gateway over
// them.
func newFromConfig(ctx context.Context, cfg *config.Config, opts *wiring.Options) (*Gateway, error) {
	p, err := wiring.Build(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	return New(ctx, p)
}
