package anomaly

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// traffic makes a deployment's calls: principals principals over tools tools, 50 000 calls a
// second of event time, one in a hundred denied.
type traffic struct {
	principals, tools []string
	start             time.Time
}

func newTraffic(principals, tools int) *traffic {
	tr := &traffic{start: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	for i := range principals {
		tr.principals = append(tr.principals, fmt.Sprintf("key:%08x", i*2654435761))
	}
	for i := range tools {
		tr.tools = append(tr.tools, fmt.Sprintf("upstream%d.tool_%d", i%4, i))
	}
	return tr
}

var benchAddr = netip.MustParseAddr("198.51.100.20")

func (tr *traffic) event(i int) Event {
	// A principal's calls go to a few tools: its own slice of the list.
	p := (i * 7919) % len(tr.principals)
	return Event{
		Time:      tr.start.Add(time.Duration(i) * 20 * time.Microsecond),
		Principal: tr.principals[p],
		Address:   benchAddr,
		Tool:      tr.tools[(p+i%5)%len(tr.tools)],
		Denied:    i%100 == 0,
	}
}

// BenchmarkDetector is the processing side, per event: "process" is the work of Run alone;
// "queue" goes through Observe's queue to Run on another goroutine, the producer waiting for
// room instead of dropping, so every event is processed.
func BenchmarkDetector(b *testing.B) {
	tr := newTraffic(10000, 200)
	signals := 0
	opts := Options{OnSignal: func(Signal) { signals++ }, OffHours: OffHours{From: 22, To: 6}}
	b.Run("process", func(b *testing.B) {
		d := New(opts)
		for i := range 1 << 20 { // learn first
			d.process(tr.event(i))
		}
		i := 1 << 20
		b.ReportAllocs()
		for b.Loop() {
			d.process(tr.event(i))
			i++
		}
	})
	b.Run("queue", func(b *testing.B) {
		d := New(opts)
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Run(ctx)
		}()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d.queue <- tr.event(i)
			i++
		}
		for len(d.queue) > 0 {
			runtime.Gosched()
		}
		b.StopTimer()
		cancel()
		<-done
		b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkObserve is the caller's cost: "queued" with room in the queue, "full" when the
// event is dropped.
func BenchmarkObserve(b *testing.B) {
	ev := newTraffic(1, 1).event(0)
	b.Run("queued", func(b *testing.B) {
		d := New(Options{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range d.queue {
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			d.Observe(ev)
		}
		b.StopTimer()
		close(d.queue)
		<-done
	})
	b.Run("full", func(b *testing.B) {
		d := New(Options{QueueSize: 1})
		d.Observe(ev)
		b.ReportAllocs()
		for b.Loop() {
			d.Observe(ev)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		d := New(Options{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range d.queue {
			}
		}()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d.Observe(ev)
			}
		})
		b.StopTimer()
		close(d.queue)
		<-done
	})
}
