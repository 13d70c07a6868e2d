package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxSamples bounds the latencies kept for one measurement; requests beyond it are counted but
// not timed (a run at this rate would be far past any realistic duration).
const maxSamples = 4 << 20

// maxErrorKinds bounds the distinct error messages remembered for one measurement.
const maxErrorKinds = 16

// loadSpec is one closed-loop load: Concurrency clients each sending their next request as soon
// as the previous one is answered, for Warmup and then Duration.
type loadSpec struct {
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	// NewWorker prepares client i (opens its session) and returns the function that sends one
	// request; seq numbers the client's requests from 1.
	NewWorker func(ctx context.Context, i int) (func(ctx context.Context, seq int64) error, error)
	// OnMeasure is called when the measured window starts and when every client has stopped.
	OnMeasure func(start bool)
}

// loadResult is the outcome of one measured window.
type loadResult struct {
	Requests   int64            `json:"requests"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"throughput_rps"`
	Latency    latencyStats     `json:"latency_us"`
}

// latencyStats are client-observed latencies in microseconds.
type latencyStats struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// runLoad runs spec and returns what happened in the measured window: requests that started in
// it, how long they took, and how many failed.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	n := max(spec.Concurrency, 1)
	workers := make([]func(context.Context, int64) error, n)
	var prepErr error
	var once sync.Once
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // bound the concurrent session openings
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			w, err := spec.NewWorker(ctx, i)
			if err != nil {
				once.Do(func() { prepErr = fmt.Errorf("client %d: %w", i, err) })
				return
			}
			workers[i] = w
		}()
	}
	wg.Wait()
	if prepErr != nil {
		return loadResult{}, prepErr
	}

	start := time.Now()
	measureFrom := start.Add(spec.Warmup)
	end := measureFrom.Add(spec.Duration)
	// Each request gets the whole run plus a margin; a stuck request fails instead of hanging.
	rctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()

	var (
		mu        sync.Mutex
		samples   = make([]int64, 0, 1<<14)
		requests  atomic.Int64
		failures  atomic.Int64
		kinds     = map[string]int64{}
		lastDone  atomic.Int64
		measuring = make(chan struct{})
	)
	go func() {
		t := time.NewTimer(time.Until(measureFrom))
		defer t.Stop()
		select {
		case <-t.C:
		case <-rctx.Done():
		}
		if spec.OnMeasure != nil {
			spec.OnMeasure(true)
		}
		close(measuring)
	}()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]int64, 0, 4096)
			flush := func() {
				mu.Lock()
				if room := maxSamples - len(samples); room > 0 {
					samples = append(samples, local[:min(room, len(local))]...)
				}
				mu.Unlock()
				local = local[:0]
			}
			defer flush()
			for seq := int64(1); ; seq++ {
				t0 := time.Now()
				if !t0.Before(end) || rctx.Err() != nil {
					return
				}
				err := w(rctx, seq)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				requests.Add(1)
				for {
					old := lastDone.Load()
					if t1.UnixNano() <= old || lastDone.CompareAndSwap(old, t1.UnixNano()) {
						break
					}
				}
				if err != nil {
					failures.Add(1)
					mu.Lock()
					key := trimError(err.Error())
					if _, ok := kinds[key]; ok || len(kinds) < maxErrorKinds {
						kinds[key]++
					}
					mu.Unlock()
					continue
				}
				local = append(local, int64(t1.Sub(t0)))
				if len(local) == cap(local) {
					flush()
				}
			}
		}()
	}
	wg.Wait()
	<-measuring
	if spec.OnMeasure != nil {
		spec.OnMeasure(false)
	}
	res := loadResult{Requests: requests.Load(), Errors: failures.Load()}
	if len(kinds) > 0 {
		res.ErrorKinds = kinds
	}
	window := time.Duration(lastDone.Load() - measureFrom.UnixNano())
	if window <= 0 {
		window = spec.Duration
	}
	res.Seconds = window.Seconds()
	res.Throughput = float64(res.Requests-res.Errors) / res.Seconds
	res.Latency = summarize(samples)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

func trimError(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// summarize computes nearest-rank percentiles of latencies in nanoseconds, in microseconds.
func summarize(ns []int64) latencyStats {
	if len(ns) == 0 {
		return latencyStats{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ns)))) - 1
		i = min(max(i, 0), len(ns)-1)
		return us(ns[i])
	}
	return latencyStats{
		Mean: round2(sum / float64(len(ns)) / 1e3),
		P50:  pct(0.50),
		P90:  pct(0.90),
		P99:  pct(0.99),
		Max:  us(ns[len(ns)-1]),
	}
}

func us(ns int64) float64 { return round2(float64(ns) / 1e3) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }
