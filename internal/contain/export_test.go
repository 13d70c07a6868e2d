package contain

import (
	"context"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// CountRoundTrips makes r count its requests to the server, and returns the count: each Do
// or DoMulti is one round trip (DoMulti's commands travel together).
func CountRoundTrips(r *Redis) *atomic.Int64 {
	c := &countingClient{Client: r.client}
	r.client = c
	return &c.n
}

type countingClient struct {
	rueidis.Client
	n atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}
