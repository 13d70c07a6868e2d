package stdio

import (
	"math/rand/v2"
	"time"
)

// Defaults for [Backoff].
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
)

// Backoff paces the restarts of a server process that keeps exiting. The n-th delay in a row
// is drawn uniformly from [Min, min(Max, Min·2ⁿ)]: the range doubles with every exit (full
// jitter, so that upstreams failing together do not restart in step), but never drops below
// Min, so a crash loop cannot spin. An incarnation that stayed up for at least Max counts as
// healthy, and the next delay starts over from the first.
//
// The zero value is ready to use with the defaults. A Backoff is not safe for concurrent use;
// the loop that restarts one upstream owns it.
type Backoff struct {
	// Min is the shortest delay; zero means DefaultBackoffMin.
	Min time.Duration
	// Max is the longest delay, and the uptime after which the sequence starts over; zero
	// means DefaultBackoffMax. A Max below Min is raised to Min.
	Max time.Duration
	// Rand returns a uniformly distributed integer in [0, n) for n > 0; nil means
	// math/rand/v2.Int64N.
	Rand func(n int64) int64

	exits int // exits in a row since the last healthy incarnation or Reset
}

// Next returns how long to wait before starting the server again, given how long the
// incarnation that just ended ran (for example [ExitError.Uptime]).
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	lo, hi := b.bounds()
	if uptime >= hi {
		b.exits = 0
	}
	if b.exits < 62 {
		b.exits++
	}
	ceiling := lo
	for i := 0; i < b.exits && ceiling < hi; i++ {
		if ceiling > hi/2 {
			ceiling = hi
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, hi)
	if ceiling == lo {
		return lo
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	return lo + time.Duration(rnd(int64(ceiling-lo)+1))
}

// Reset starts the sequence over, as after a healthy incarnation.
func (b *Backoff) Reset() { b.exits = 0 }

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo, hi = b.Min, b.Max
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	return lo, max(lo, hi)
}
