package stdio

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	highest := func(n int64) int64 { return n - 1 }
	lowest := func(int64) int64 { return 0 }
	const crash = 0 // uptime of an incarnation that died at once
	for _, tc := range []struct {
		name    string
		b       Backoff
		uptimes []time.Duration
		reset   int // call Reset before this step (0: never)
		want    []time.Duration
	}{
		{
			name:    "ceiling doubles up to Max",
			b:       Backoff{Min: time.Second, Max: 10 * time.Second, Rand: highest},
			uptimes: []time.Duration{crash, crash, crash, crash, crash},
			want:    []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second},
		},
		{
			name:    "never below Min",
			b:       Backoff{Min: time.Second, Max: 10 * time.Second, Rand: lowest},
			uptimes: []time.Duration{crash, crash, crash},
			want:    []time.Duration{time.Second, time.Second, time.Second},
		},
		{
			name:    "an incarnation that stayed up for Max starts the sequence over",
			b:       Backoff{Min: time.Second, Max: 10 * time.Second, Rand: highest},
			uptimes: []time.Duration{crash, crash, crash, 10 * time.Second, crash},
			want:    []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:    "a shorter uptime does not",
			b:       Backoff{Min: time.Second, Max: 10 * time.Second, Rand: highest},
			uptimes: []time.Duration{crash, 9 * time.Second, crash},
			want:    []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second},
		},
		{
			name:    "Reset starts over",
			b:       Backoff{Min: time.Second, Max: 10 * time.Second, Rand: highest},
			uptimes: []time.Duration{crash, crash, crash},
			reset:   2,
			want:    []time.Duration{2 * time.Second, 4 * time.Second, 2 * time.Second},
		},
		{
			name:    "zero value uses the defaults",
			b:       Backoff{Rand: highest},
			uptimes: []time.Duration{crash, crash, crash, crash, crash, crash, crash},
			want:    []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute},
		},
		{
			name:    "Max below Min",
			b:       Backoff{Min: 5 * time.Second, Max: time.Second, Rand: highest},
			uptimes: []time.Duration{crash, crash},
			want:    []time.Duration{5 * time.Second, 5 * time.Second},
		},
		{
			name:    "long crash loops do not overflow",
			b:       Backoff{Min: time.Nanosecond, Max: 1 << 62, Rand: highest},
			uptimes: make([]time.Duration, 100),
			want:    nil, // checked below: every delay within [Min, Max]
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			var got []time.Duration
			for i, up := range tc.uptimes {
				if tc.reset != 0 && i == tc.reset {
					b.Reset()
				}
				got = append(got, b.Next(up))
			}
			if tc.want == nil {
				for i, d := range got {
					if d < b.Min || d > b.Max {
						t.Fatalf("delay %d = %s, outside [%s, %s]", i, d, b.Min, b.Max)
					}
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffJitterSpreadsDelays(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: time.Millisecond, Max: time.Second}
	seen := make(map[time.Duration]bool)
	for range 50 {
		b.Reset()
		b.Next(0)
		b.Next(0)
		seen[b.Next(0)] = true // drawn from [1ms, 8ms]
	}
	if len(seen) < 10 {
		t.Errorf("50 draws gave only %d distinct delays; want jitter", len(seen))
	}
}
