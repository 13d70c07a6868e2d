package anomaly

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"
)

// Defaults for Options.
const (
	DefaultQueueSize        = 65536
	DefaultMaxPrincipals    = 100000
	DefaultMaxTools         = 256
	DefaultMinEvents        = 50
	DefaultUnusualHourShare = 0.01
	DefaultHourHistory      = 7 * 24 * time.Hour
	DefaultDenialBurst      = 5
	DefaultDenialWindow     = time.Minute
	DefaultSpikeFactor      = 10
	DefaultSpikeFloor       = 60
	DefaultCooldown         = 5 * time.Minute
)

// MaxDenialBurst bounds Options.DenialBurst: each principal that has been denied remembers that
// many denial times.
const MaxDenialBurst = 64

// spikeHigh is how many times over its threshold a minute must go for a volume spike to be
// high rather than medium.
const spikeHigh = 5

// minRateMinutes is how many completed minutes with calls a profile needs before its rate is
// trusted.
const minRateMinutes = 5

// rateMemory is how many active minutes the learned rate averages over: a plain mean for a
// profile's first rateMemory minutes, an exponentially weighted one after.
const rateMemory = 20

// OffHours is a window of the day, in Options.Location, in which any call is unusual: From
// (0–23) is its first hour and To (0–23) the hour it ends at, so {22, 6} is 22:00 to 06:00.
// From == To is no window.
type OffHours struct {
	From, To int
}

// Contains reports whether hour (0–23) falls in the window.
func (w OffHours) Contains(hour int) bool {
	if w.From <= w.To {
		return w.From <= hour && hour < w.To
	}
	return hour >= w.From || hour < w.To
}

func (w OffHours) String() string { return fmt.Sprintf("%02d:00–%02d:00", w.From, w.To) }

// Options configures a Detector. A zero field takes its default.
type Options struct {
	// OnSignal receives every signal, on the goroutine running Run, one at a time. It should
	// hand the signal on and return: while it runs no event is processed and the queue fills.
	OnSignal func(Signal)

	// QueueSize is how many events may wait for Run (default DefaultQueueSize); Observe drops
	// events beyond it.
	QueueSize int
	// MaxPrincipals bounds the profiles kept (default DefaultMaxPrincipals); the least recently
	// seen is forgotten to make room for a new one.
	MaxPrincipals int
	// MaxTools bounds the tools learned per principal (default DefaultMaxTools). A principal
	// that has used that many tools learns no more, and no longer raises new_tool: its profile
	// is too broad for a first use to mean anything.
	MaxTools int
	// MinEvents is how many calls a principal makes before its profile is trusted (default
	// DefaultMinEvents). Until then it learns and raises only the signals that need no profile:
	// unusual_hour in OffHours, and denial_burst.
	MinEvents int

	// Location is the time zone of the hours of the day (default UTC).
	Location *time.Location
	// OffHours, when set, makes every call in those hours unusual_hour, whatever the profile.
	OffHours OffHours
	// UnusualHourShare: a call in an hour that holds less than this share of a trusted
	// profile's calls is unusual_hour (default DefaultUnusualHourShare).
	UnusualHourShare float64
	// HourHistory is how long a profile must have been learning before its hours are judged
	// (default DefaultHourHistory): a principal's first day says little about the hours of its
	// next, and judging them would flag every new principal each time the clock moves on.
	HourHistory time.Duration

	// DenialBurst policy denials within DenialWindow raise denial_burst (defaults
	// DefaultDenialBurst, at most MaxDenialBurst, and DefaultDenialWindow).
	DenialBurst  int
	DenialWindow time.Duration

	// A minute with more than SpikeFactor times the principal's learned calls a minute, and
	// more than SpikeFloor calls, raises volume_spike (defaults DefaultSpikeFactor and
	// DefaultSpikeFloor).
	SpikeFactor float64
	SpikeFloor  int

	// Cooldown: once a kind of signal fires for a principal, it fires again for that principal
	// only after Cooldown (default DefaultCooldown), or sooner at a higher severity.
	Cooldown time.Duration

	// Now stamps events whose Time is zero (default time.Now).
	Now func() time.Time
}

// Validate reports every problem with the options, joined.
func (o *Options) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.QueueSize < 0, "queue size %d is negative", o.QueueSize)
	check(o.MaxPrincipals < 0, "max principals %d is negative", o.MaxPrincipals)
	check(o.MaxTools < 0, "max tools %d is negative", o.MaxTools)
	check(o.MinEvents < 0, "min events %d is negative", o.MinEvents)
	check(o.OffHours.From < 0 || o.OffHours.From > 23, "off-hours from %d: want an hour 0–23", o.OffHours.From)
	check(o.OffHours.To < 0 || o.OffHours.To > 23, "off-hours to %d: want an hour 0–23", o.OffHours.To)
	check(o.UnusualHourShare < 0 || o.UnusualHourShare >= 1 || math.IsNaN(o.UnusualHourShare), "unusual hour share %v: want a fraction from 0 to 1", o.UnusualHourShare)
	check(o.HourHistory < 0, "hour history %v is negative", o.HourHistory)
	check(o.DenialBurst < 0 || o.DenialBurst > MaxDenialBurst, "denial burst %d: want 1–%d", o.DenialBurst, MaxDenialBurst)
	check(o.DenialWindow < 0, "denial window %v is negative", o.DenialWindow)
	check(o.SpikeFactor != 0 && !(o.SpikeFactor >= 1), "spike factor %v: want 1 or more", o.SpikeFactor)
	check(o.SpikeFloor < 0, "spike floor %d is negative", o.SpikeFloor)
	check(o.Cooldown < 0, "cooldown %v is negative", o.Cooldown)
	return errors.Join(errs...)
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.QueueSize, DefaultQueueSize)
	def(&o.MaxPrincipals, DefaultMaxPrincipals)
	def(&o.MaxTools, DefaultMaxTools)
	def(&o.MinEvents, DefaultMinEvents)
	def(&o.DenialBurst, DefaultDenialBurst)
	def(&o.SpikeFloor, DefaultSpikeFloor)
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.UnusualHourShare == 0 {
		o.UnusualHourShare = DefaultUnusualHourShare
	}
	if o.HourHistory == 0 {
		o.HourHistory = DefaultHourHistory
	}
	if o.DenialWindow == 0 {
		o.DenialWindow = DefaultDenialWindow
	}
	if o.SpikeFactor == 0 {
		o.SpikeFactor = DefaultSpikeFactor
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnSignal == nil {
		o.OnSignal = func(Signal) {}
	}
}

// Detector keeps a profile per principal and raises signals.
//
// Concurrency: Observe may be called from any goroutine and never blocks. Everything else
// happens on the one goroutine running Run, which alone owns the profiles, so they need no
// lock; OnSignal is called there too.
type Detector struct {
	queue    chan Event
	dropped  atomic.Uint64
	running  atomic.Bool
	opts     Options
	seed     maphash.Seed
	profiles *table // owned by Run's goroutine
}

// New returns a detector; nothing is processed until Run. It panics if opts are invalid
// (Options.Validate): the configuration is validated before it gets here.
func New(opts Options) *Detector {
	if err := opts.Validate(); err != nil {
		panic("anomaly: invalid options: " + err.Error())
	}
	opts.setDefaults()
	return &Detector{
		queue:    make(chan Event, opts.QueueSize),
		opts:     opts,
		seed:     maphash.MakeSeed(),
		profiles: newTable(opts.MaxPrincipals),
	}
}

// Observe queues ev for Run without ever blocking: when the queue is full, ev is dropped and
// counted (Dropped). A nil Detector observes nothing.
func (d *Detector) Observe(ev Event) {
	if d == nil {
		return
	}
	select {
	case d.queue <- ev:
	default:
		d.dropped.Add(1)
	}
}

// Dropped returns how many events Observe has dropped because the queue was full.
func (d *Detector) Dropped() uint64 { return d.dropped.Load() }

// Run processes queued events until ctx ends; events still queued then are left unprocessed.
// Run it on its own goroutine; it panics if another Run is running.
func (d *Detector) Run(ctx context.Context) {
	if !d.running.CompareAndSwap(false, true) {
		panic("anomaly: Run called while another Run is running")
	}
	defer d.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-d.queue:
			d.process(ev)
		}
	}
}

// process updates the principal's profile with ev and raises the signals ev warrants. Each
// check looks at the profile as it was before ev, then ev is learned.
func (d *Detector) process(ev Event) {
	if ev.Principal == "" {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = d.opts.Now()
	}
	p := d.profiles.get(ev.Principal)
	trusted := p.calls >= uint64(d.opts.MinEvents)
	t := ev.Time.UnixNano()
	if p.calls == 0 {
		p.first = t
	}
	hour := ev.Time.In(d.opts.Location).Hour()

	d.checkHour(p, &ev, t, hour, trusted)
	if ev.Tool != "" && !ev.Denied {
		// A denied call does not use the tool: it is neither learned nor a first use.
		d.checkTool(p, &ev, t, trusted)
	}
	if ev.Denied {
		d.checkDenials(p, &ev, t)
	}
	d.checkVolume(p, &ev, t, trusted)

	p.calls++
	if p.hoursTotal >= math.MaxUint32/2 {
		p.hoursTotal = 0
		for h := range p.hours {
			p.hours[h] /= 2
			p.hoursTotal += p.hours[h]
		}
	}
	p.hours[hour]++
	p.hoursTotal++
}

// checkHour raises unusual_hour for a call in the off-hours, or in an hour that holds less than
// UnusualHourShare of a trusted profile's calls once the profile spans HourHistory.
func (d *Detector) checkHour(p *profile, ev *Event, t int64, hour int, trusted bool) {
	off := d.opts.OffHours.Contains(hour)
	rare := trusted && t-p.first >= int64(d.opts.HourHistory) && float64(p.hours[hour]) < d.opts.UnusualHourShare*float64(p.hoursTotal)
	if !off && !rare || !d.ready(p, KindUnusualHour, SeverityMedium, t) {
		return
	}
	detail := fmt.Sprintf("call at %02d:00 %s", hour, d.opts.Location)
	if off {
		detail += fmt.Sprintf(", in the off-hours %v", d.opts.OffHours)
	}
	if rare {
		detail += fmt.Sprintf(", an hour in which the principal made %d of its %d calls", p.hours[hour], p.hoursTotal)
	}
	d.emit(ev, KindUnusualHour, SeverityMedium, detail)
}

// checkTool raises new_tool for the first use of a tool by a trusted profile, and learns the
// tool.
func (d *Detector) checkTool(p *profile, ev *Event, t int64, trusted bool) {
	h := maphash.String(d.seed, ev.Tool)
	if p.knows(h) || len(p.tools) >= d.opts.MaxTools {
		return
	}
	known := len(p.tools)
	p.learn(h, d.opts.MaxTools)
	if trusted && d.ready(p, KindNewTool, SeverityLow, t) {
		d.emit(ev, KindNewTool, SeverityLow, fmt.Sprintf("first use of %s after %d calls to %d other tools", ev.Tool, p.calls, known))
	}
}

// checkDenials remembers a denial and raises denial_burst when the last DenialBurst denials
// fall within DenialWindow.
func (d *Detector) checkDenials(p *profile, ev *Event, t int64) {
	n := d.opts.DenialBurst
	if cap(p.denials) < n {
		p.denials = make([]int64, n)
	}
	p.denials = p.denials[:n]
	p.denials[p.denialNext] = t
	p.denialNext = (p.denialNext + 1) % n
	p.denialCount = min(p.denialCount+1, n)
	if p.denialCount < n {
		return
	}
	span := time.Duration(t - p.denials[p.denialNext]) // the oldest of the last n
	if span > d.opts.DenialWindow || !d.ready(p, KindDenialBurst, SeverityHigh, t) {
		return
	}
	d.emit(ev, KindDenialBurst, SeverityHigh, fmt.Sprintf("%d policy denials within %v (threshold %d within %v)", n, span, n, d.opts.DenialWindow))
}

// checkVolume counts the call in its minute, folds a completed minute into the learned rate,
// and raises volume_spike when a trusted profile's minute goes over its threshold: medium over
// it, high over spikeHigh times it.
func (d *Detector) checkVolume(p *profile, ev *Event, t int64, trusted bool) {
	m := ev.Time.Unix() / 60
	switch {
	case p.calls == 0:
		p.minute = m
	case m > p.minute:
		d.fold(p)
		p.minute, p.inMinute = m, 0
	}
	// A late event (m < p.minute) counts in the current minute.
	p.inMinute++
	if !trusted || !rateLearned(p) {
		return
	}
	limit := d.threshold(p)
	n := float64(p.inMinute)
	var sev Severity
	switch {
	case n > spikeHigh*limit:
		sev = SeverityHigh
	case n > limit:
		sev = SeverityMedium
	default:
		return
	}
	if d.ready(p, KindVolumeSpike, sev, t) {
		d.emit(ev, KindVolumeSpike, sev, fmt.Sprintf("%d calls in the minute; learned %.1f a minute, threshold %.0f", p.inMinute, p.rate, limit))
	}
}

// threshold is the number of calls in a minute above which the minute is a spike.
func (d *Detector) threshold(p *profile) float64 {
	return max(float64(d.opts.SpikeFloor), d.opts.SpikeFactor*p.rate)
}

// rateLearned reports whether p's rate averages enough minutes to be trusted: minRateMinutes
// besides the first, which is partial.
func rateLearned(p *profile) bool { return p.minutes > minRateMinutes }

// fold adds the completed minute to the learned rate. The profile's first minute is partial
// and left out; once the rate is learned, a spike counts only up to the threshold, so one huge
// minute does not blind the detector for long.
func (d *Detector) fold(p *profile) {
	x := float64(p.inMinute)
	if rateLearned(p) {
		x = min(x, d.threshold(p))
	}
	p.minutes++
	if p.minutes == 1 {
		return
	}
	p.rate += (x - p.rate) / float64(min(p.minutes-1, rateMemory))
}

// ready reports whether a signal of kind k at sev may fire for p at t, and if so records that
// it fires: not within Cooldown of the last one of its kind, unless more severe.
func (d *Detector) ready(p *profile, k Kind, sev Severity, t int64) bool {
	if last := p.fired[k]; last != 0 && t-last < int64(d.opts.Cooldown) && sev <= p.firedSeverity[k] {
		return false
	}
	p.fired[k], p.firedSeverity[k] = t, sev
	return true
}

func (d *Detector) emit(ev *Event, k Kind, sev Severity, detail string) {
	d.opts.OnSignal(Signal{
		Kind:      k,
		Severity:  sev,
		Principal: ev.Principal,
		Address:   ev.Address,
		Tool:      ev.Tool,
		Detail:    detail,
		Time:      ev.Time,
	})
}
