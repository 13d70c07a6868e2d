package anomaly

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// day0 is a Monday, midnight UTC.
var day0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

var addr = netip.MustParseAddr("192.0.2.7")

// at returns day0 plus the days, hours, minutes and seconds given.
func at(day, hour, minute, second int) time.Time {
	return day0.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute + time.Duration(second)*time.Second)
}

// seen is the part of a Signal the tests compare; Detail is for people and checked apart.
type seen struct {
	Kind      Kind
	Severity  Severity
	Principal string
	Tool      string
	Time      time.Time
}

// harness runs a detector synchronously: feed processes each event on the test's goroutine, as
// Run would, and the signals are collected in order.
type harness struct {
	t       *testing.T
	d       *Detector
	signals []Signal
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t}
	opts.OnSignal = func(s Signal) { h.signals = append(h.signals, s) }
	h.d = New(opts)
	return h
}

func (h *harness) feed(evs ...Event) {
	for _, ev := range evs {
		if ev.Address == (netip.Addr{}) {
			ev.Address = addr
		}
		h.d.process(ev)
	}
}

// take returns the signals raised since the last take.
func (h *harness) take() []seen {
	var out []seen
	for _, s := range h.signals {
		if s.Detail == "" {
			h.t.Errorf("%v signal for %s has no detail", s.Kind, s.Principal)
		}
		if s.Address != addr {
			h.t.Errorf("%v signal carries address %v, want the call's %v", s.Kind, s.Address, addr)
		}
		out = append(out, seen{s.Kind, s.Severity, s.Principal, s.Tool, s.Time})
	}
	h.signals = nil
	return out
}

// expect checks the signals raised since the last take.
func (h *harness) expect(what string, want ...seen) {
	h.t.Helper()
	if diff := cmp.Diff(want, h.take()); diff != "" {
		h.t.Errorf("%s: signals (-want +got):\n%s", what, diff)
	}
}

// office feeds principal's working week: a call every ten minutes from 09:00 to 17:00 on days
// first to last, rotating over tools. It returns how many calls it fed.
func (h *harness) office(principal string, first, last int, tools ...string) int {
	n := 0
	for day := first; day <= last; day++ {
		for hour := 9; hour < 17; hour++ {
			for m := 0; m < 60; m += 10 {
				h.feed(Event{Time: at(day, hour, m, 0), Principal: principal, Tool: tools[n%len(tools)]})
				n++
			}
		}
	}
	return n
}

func TestUnusualHour(t *testing.T) {
	t.Parallel()
	t.Run("a regular principal at 03:00", func(t *testing.T) {
		h := newHarness(t, Options{})
		h.office("bot", 0, 7, "fin.quote", "fin.news", "fin.chart")
		h.expect("a regular working week")
		h.feed(Event{Time: at(8, 3, 0, 0), Principal: "bot", Tool: "fin.quote"})
		h.expect("03:00", seen{KindUnusualHour, SeverityMedium, "bot", "fin.quote", at(8, 3, 0, 0)})
		h.feed(Event{Time: at(8, 10, 0, 0), Principal: "bot", Tool: "fin.quote"})
		h.expect("back in working hours")
	})
	t.Run("learning", func(t *testing.T) {
		h := newHarness(t, Options{})
		for i := range DefaultMinEvents {
			h.feed(Event{Time: at(0, 3+i%20, 0, 0), Principal: "new", Tool: "fin.quote"})
		}
		h.expect("a new principal at any hour, no off-hours set")
		h.office("new-hire", 0, 1, "fin.quote")
		h.feed(Event{Time: at(2, 3, 0, 0), Principal: "new-hire", Tool: "fin.quote"})
		h.expect("03:00 after two days of calls in working hours")
		h.feed(Event{Time: at(8, 4, 0, 0), Principal: "new-hire", Tool: "fin.quote"})
		h.expect("04:00 a week later", seen{KindUnusualHour, SeverityMedium, "new-hire", "fin.quote", at(8, 4, 0, 0)})
	})
	t.Run("off-hours for a new principal", func(t *testing.T) {
		h := newHarness(t, Options{OffHours: OffHours{From: 22, To: 6}})
		h.feed(Event{Time: at(0, 12, 0, 0), Principal: "new"}, Event{Time: at(0, 21, 59, 59), Principal: "new"})
		h.expect("inside working hours")
		h.feed(Event{Time: at(1, 3, 0, 0), Principal: "new"})
		h.expect("03:00", seen{KindUnusualHour, SeverityMedium, "new", "", at(1, 3, 0, 0)})
		h.feed(Event{Time: at(2, 22, 0, 0), Principal: "other"})
		h.expect("22:00", seen{KindUnusualHour, SeverityMedium, "other", "", at(2, 22, 0, 0)})
		h.feed(Event{Time: at(3, 6, 0, 0), Principal: "third"})
		h.expect("06:00 ends the window")
	})
	t.Run("off-hours in the deployment's zone", func(t *testing.T) {
		hcm := time.FixedZone("UTC+7", 7*3600)
		h := newHarness(t, Options{OffHours: OffHours{From: 22, To: 6}, Location: hcm})
		h.feed(Event{Time: at(0, 3, 0, 0), Principal: "a"})
		h.expect("03:00 UTC is 10:00 local")
		h.feed(Event{Time: at(0, 20, 0, 0), Principal: "a"})
		if len(h.signals) == 1 && !strings.Contains(h.signals[0].Detail, "03:00 UTC+7") {
			t.Errorf("detail %q does not give the local hour and zone", h.signals[0].Detail)
		}
		h.expect("20:00 UTC is 03:00 local", seen{KindUnusualHour, SeverityMedium, "a", "", at(0, 20, 0, 0)})
	})
	t.Run("a regular principal inside off-hours", func(t *testing.T) {
		h := newHarness(t, Options{OffHours: OffHours{From: 22, To: 6}})
		h.office("bot", 0, 4, "fin.quote")
		h.expect("a working week outside the off-hours")
		h.feed(Event{Time: at(5, 23, 0, 0), Principal: "bot", Tool: "fin.quote"})
		h.expect("23:00", seen{KindUnusualHour, SeverityMedium, "bot", "fin.quote", at(5, 23, 0, 0)})
	})
	t.Run("cooldown", func(t *testing.T) {
		h := newHarness(t, Options{OffHours: OffHours{From: 22, To: 6}})
		for s := 0; s < 300; s += 10 {
			h.feed(Event{Time: at(0, 3, 0, s), Principal: "night"})
		}
		h.feed(Event{Time: at(0, 3, 4, 59), Principal: "night"})
		h.expect("a night's five minutes", seen{KindUnusualHour, SeverityMedium, "night", "", at(0, 3, 0, 0)})
		h.feed(Event{Time: at(0, 3, 5, 0), Principal: "night"})
		h.expect("five minutes later", seen{KindUnusualHour, SeverityMedium, "night", "", at(0, 3, 5, 0)})
	})
}

func TestNewTool(t *testing.T) {
	t.Parallel()
	t.Run("first use after learning", func(t *testing.T) {
		h := newHarness(t, Options{})
		h.office("bot", 0, 1, "fin.quote", "fin.news")
		h.expect("tools used while learning")
		h.feed(Event{Time: at(2, 10, 0, 0), Principal: "bot", Tool: "fin.trade"})
		h.expect("a new tool", seen{KindNewTool, SeverityLow, "bot", "fin.trade", at(2, 10, 0, 0)})
		h.feed(Event{Time: at(2, 10, 30, 0), Principal: "bot", Tool: "fin.trade"})
		h.expect("the same tool again, after the cooldown")
		h.feed(Event{Time: at(2, 11, 0, 0), Principal: "bot"})
		h.expect("a call that is not a tool call")
	})
	t.Run("a denied call uses no tool", func(t *testing.T) {
		h := newHarness(t, Options{})
		h.office("bot", 0, 1, "fin.quote")
		h.feed(Event{Time: at(2, 10, 0, 0), Principal: "bot", Tool: "fin.trade", Denied: true})
		h.expect("a denied call to a new tool")
		h.feed(Event{Time: at(2, 11, 0, 0), Principal: "bot", Tool: "fin.trade"})
		h.expect("its first allowed use", seen{KindNewTool, SeverityLow, "bot", "fin.trade", at(2, 11, 0, 0)})
	})
	t.Run("cooldown", func(t *testing.T) {
		h := newHarness(t, Options{})
		h.office("bot", 0, 1, "fin.quote")
		h.feed(
			Event{Time: at(2, 10, 0, 0), Principal: "bot", Tool: "fs.read"},
			Event{Time: at(2, 10, 0, 1), Principal: "bot", Tool: "fs.write"},
			Event{Time: at(2, 10, 4, 0), Principal: "bot", Tool: "fs.delete"},
		)
		h.expect("three new tools in four minutes", seen{KindNewTool, SeverityLow, "bot", "fs.read", at(2, 10, 0, 0)})
		h.feed(Event{Time: at(2, 10, 6, 0), Principal: "bot", Tool: "fs.write"})
		h.expect("a tool first used during the cooldown is learned")
		h.feed(Event{Time: at(2, 10, 7, 0), Principal: "bot", Tool: "fs.list"})
		h.expect("after the cooldown", seen{KindNewTool, SeverityLow, "bot", "fs.list", at(2, 10, 7, 0)})
	})
	t.Run("at most MaxTools", func(t *testing.T) {
		h := newHarness(t, Options{MaxTools: 3})
		h.office("bot", 0, 1, "a", "b", "c")
		h.feed(Event{Time: at(2, 10, 0, 0), Principal: "bot", Tool: "d"})
		h.expect("a fourth tool past the bound")
		if p := h.d.profiles.get("bot"); len(p.tools) != 3 {
			t.Errorf("the profile holds %d tools, want 3", len(p.tools))
		}
	})
}

func TestDenialBurst(t *testing.T) {
	t.Parallel()
	deny := func(h *harness, principal string, times ...time.Time) {
		for _, tm := range times {
			h.feed(Event{Time: tm, Principal: principal, Tool: "fin.trade", Denied: true})
		}
	}
	t.Run("five in a minute, first calls of a principal", func(t *testing.T) {
		h := newHarness(t, Options{})
		deny(h, "probe", at(0, 10, 0, 0), at(0, 10, 0, 10), at(0, 10, 0, 20), at(0, 10, 0, 30))
		h.expect("four denials")
		deny(h, "probe", at(0, 10, 1, 0))
		h.expect("the fifth within a minute", seen{KindDenialBurst, SeverityHigh, "probe", "fin.trade", at(0, 10, 1, 0)})
	})
	t.Run("spread out", func(t *testing.T) {
		h := newHarness(t, Options{})
		for i := range 20 {
			deny(h, "clumsy", at(0, 10, 0, 0).Add(time.Duration(i)*20*time.Second))
		}
		h.expect("one denial every 20 seconds")
	})
	t.Run("allowed calls between", func(t *testing.T) {
		h := newHarness(t, Options{})
		for i := range 4 {
			deny(h, "probe", at(0, 10, 0, i))
			h.feed(Event{Time: at(0, 10, 0, i), Principal: "probe", Tool: "fin.quote"})
		}
		h.expect("four denials among allowed calls")
		deny(h, "other", at(0, 10, 0, 30))
		h.expect("a denial of another principal")
	})
	t.Run("cooldown", func(t *testing.T) {
		h := newHarness(t, Options{})
		for s := range 240 {
			deny(h, "probe", at(0, 10, s/60, s%60))
		}
		h.expect("a denial a second for four minutes", seen{KindDenialBurst, SeverityHigh, "probe", "fin.trade", at(0, 10, 0, 4)})
	})
	t.Run("thresholds", func(t *testing.T) {
		h := newHarness(t, Options{DenialBurst: 2, DenialWindow: time.Second})
		deny(h, "probe", at(0, 10, 0, 0), at(0, 10, 0, 2))
		h.expect("two denials two seconds apart")
		deny(h, "probe", at(0, 10, 0, 3))
		h.expect("two within a second", seen{KindDenialBurst, SeverityHigh, "probe", "fin.trade", at(0, 10, 0, 3)})
	})
}

func TestVolumeSpike(t *testing.T) {
	t.Parallel()
	// steady feeds n calls in each minute from minute first up to last (excluded) of day 0, 10:00.
	steady := func(h *harness, principal string, n, first, last int) {
		for m := first; m < last; m++ {
			for i := range n {
				h.feed(Event{Time: at(0, 10, m, i*60/n), Principal: principal, Tool: "fin.quote"})
			}
		}
	}
	t.Run("a quiet principal's bursts", func(t *testing.T) {
		h := newHarness(t, Options{})
		steady(h, "quiet", 1, 0, 60)
		steady(h, "quiet", 3, 60, 61)
		h.expect("three calls in a minute, learned one")
		steady(h, "quiet", DefaultSpikeFloor, 61, 62)
		h.expect("at the floor")
		steady(h, "quiet", DefaultSpikeFloor+1, 62, 63)
		h.expect("over the floor", seen{KindVolumeSpike, SeverityMedium, "quiet", "fin.quote", at(0, 11, 2, 59)})
	})
	t.Run("a busy principal", func(t *testing.T) {
		h := newHarness(t, Options{})
		steady(h, "busy", 100, 0, 30)
		steady(h, "busy", 1000, 30, 31)
		h.expect("ten times its rate")
		steady(h, "spiky", 100, 0, 30)
		steady(h, "spiky", 5001, 30, 31)
		h.expect("over ten, then over fifty times its rate, within the cooldown",
			seen{KindVolumeSpike, SeverityMedium, "spiky", "fin.quote", at(0, 10, 30, 11)},
			seen{KindVolumeSpike, SeverityHigh, "spiky", "fin.quote", at(0, 10, 30, 59)})
	})
	t.Run("learning", func(t *testing.T) {
		h := newHarness(t, Options{})
		steady(h, "new", 2000, 0, 1)
		steady(h, "new", 10, 1, minRateMinutes)
		steady(h, "new", 2000, minRateMinutes, minRateMinutes+1)
		h.expect("too few minutes for a learned rate")
	})
	t.Run("idle minutes do not lower the rate", func(t *testing.T) {
		h := newHarness(t, Options{})
		for day := range 5 {
			for m := 0; m < 30; m++ {
				for i := range 100 {
					h.feed(Event{Time: at(day, 10, m, i*60/100), Principal: "batch", Tool: "fin.quote"})
				}
			}
		}
		h.expect("the same half hour of work each day")
		for i := range 1001 {
			h.feed(Event{Time: at(5, 10, 0, i*60/1001), Principal: "batch", Tool: "fin.quote"})
		}
		h.expect("over ten times its rate", seen{KindVolumeSpike, SeverityMedium, "batch", "fin.quote", at(5, 10, 0, 59)})
	})
	t.Run("one huge minute does not blind the detector", func(t *testing.T) {
		h := newHarness(t, Options{})
		steady(h, "bot", 10, 0, 30)
		steady(h, "bot", 100000, 30, 31)
		h.take()
		steady(h, "bot", 10, 31, 40)
		steady(h, "bot", 301, 40, 41)
		got := h.take()
		if len(got) != 1 || got[0].Kind != KindVolumeSpike || got[0].Severity != SeverityMedium || got[0].Time.Before(at(0, 10, 40, 0)) {
			t.Errorf("301 calls in a minute after a huge one, learned 10 a minute: got %v, want one medium volume_spike", got)
		}
	})
}

// TestBoundedPrincipals: a million distinct principals leave at most MaxPrincipals profiles,
// and the one seen all along keeps its profile.
func TestBoundedPrincipals(t *testing.T) {
	t.Parallel()
	const max, n = 1000, 1_000_000
	h := newHarness(t, Options{MaxPrincipals: max})
	for i := range n {
		tm := day0.Add(time.Duration(i) * time.Millisecond)
		h.feed(Event{Time: tm, Principal: fmt.Sprint("p", i), Tool: "fin.quote"})
		if i%100 == 0 {
			h.feed(Event{Time: tm, Principal: "regular", Tool: "fin.quote"})
		}
		if got := h.d.profiles.len(); got > max {
			t.Fatalf("after %d principals, %d profiles", i+1, got)
		}
	}
	if got := h.d.profiles.len(); got != max {
		t.Errorf("%d profiles, want %d", got, max)
	}
	if got, want := h.d.profiles.get("regular").calls, uint64(n/100); got != want {
		t.Errorf("the regular principal's profile holds %d calls, want %d: it was evicted", got, want)
	}
	if got := h.d.profiles.get(fmt.Sprint("p", 0)).calls; got != 0 {
		t.Errorf("the first principal's profile holds %d calls, want 0: it was never evicted", got)
	}
}

func TestObserveNeverBlocks(t *testing.T) {
	t.Parallel()
	d := New(Options{QueueSize: 8})
	for i := range 100 {
		d.Observe(Event{Time: at(0, 10, 0, i), Principal: "p"})
	}
	if got := d.Dropped(); got != 92 {
		t.Errorf("Dropped() = %d, want 92", got)
	}
	var nilDetector *Detector
	nilDetector.Observe(Event{Principal: "p"})
}

// TestRun: events observed from another goroutine are processed by Run and their signal
// delivered.
func TestRun(t *testing.T) {
	t.Parallel()
	signals := make(chan Signal, 1)
	d := New(Options{OnSignal: func(s Signal) { signals <- s }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	for i := range DefaultDenialBurst {
		d.Observe(Event{Time: at(0, 10, 0, i), Principal: "probe", Address: addr, Tool: "fin.trade", Denied: true})
	}
	s := <-signals
	cancel()
	<-done
	want := Signal{Kind: KindDenialBurst, Severity: SeverityHigh, Principal: "probe", Address: addr, Tool: "fin.trade", Time: at(0, 10, 0, 4)}
	if !strings.Contains(s.Detail, "5 policy denials within 4s") {
		t.Errorf("detail %q does not say what was seen", s.Detail)
	}
	s.Detail = ""
	if diff := cmp.Diff(want, s, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("signal (-want +got):\n%s", diff)
	}
}

func TestZeroTimeIsStampedByNow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{OffHours: OffHours{From: 22, To: 6}, Now: func() time.Time { return at(0, 23, 0, 0) }})
	h.feed(Event{Principal: "p"})
	h.expect("a call at Now", seen{KindUnusualHour, SeverityMedium, "p", "", at(0, 23, 0, 0)})
	h.feed(Event{Time: at(0, 3, 0, 0)})
	h.expect("an event without a principal")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	if err := (&Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	bad := Options{
		QueueSize:        -1,
		OffHours:         OffHours{From: 24, To: -1},
		UnusualHourShare: 1,
		DenialBurst:      MaxDenialBurst + 1,
		SpikeFactor:      0.5,
		Cooldown:         -time.Second,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid options pass")
	}
	for _, want := range []string{"queue size -1", "off-hours from 24", "off-hours to -1", "share 1", "denial burst 65", "spike factor 0.5", "cooldown -1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted invalid options")
		}
	}()
	New(bad)
}
