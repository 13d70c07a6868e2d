package contain

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// RedisOptions says how to reach the Redis server that a Redis backend or a RedisBus uses: one
// server (or a proxy in front of one); Redis Cluster and Sentinel discovery are not used.
type RedisOptions struct {
	// Addr is the server's host:port, for example "127.0.0.1:6379" (required).
	Addr string
	// Username and Password authenticate, when set.
	Username string
	Password string
	// TLS, when not nil, is the client's TLS configuration.
	TLS *tls.Config
	// DB is the database number.
	DB int
	// Prefix starts every key and the bus's channel (default "mcpguard:"), so that
	// deployments can share a server.
	Prefix string
	// Timeout bounds dialling and every command, within the caller's own deadline (default
	// 500 ms).
	Timeout time.Duration
}

// LogValue logs the options without the password.
func (o RedisOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", o.Addr), slog.String("username", o.Username),
		slog.Bool("password", o.Password != ""), slog.Bool("tls", o.TLS != nil), slog.Int("db", o.DB),
		slog.String("prefix", o.Prefix), slog.Duration("timeout", o.Timeout))
}

const (
	defaultRedisPrefix  = "mcpguard:"
	defaultRedisTimeout = 500 * time.Millisecond
	// maxMillis bounds the numbers of milliseconds or microseconds sent to the server, so
	// that the scripts' arithmetic stays exact in Lua's doubles.
	maxMillis = 1e15
)

// dialRedis connects to the server o names and pings it. It fills o's defaults.
func dialRedis(ctx context.Context, o *RedisOptions) (rueidis.Client, error) {
	if o.Addr == "" {
		return nil, errors.New("redis: no address")
	}
	if o.Prefix == "" {
		o.Prefix = defaultRedisPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultRedisTimeout
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{o.Addr},
		Username:          o.Username,
		Password:          o.Password,
		TLSConfig:         o.TLS,
		SelectDB:          o.DB,
		ClientName:        "mcpguard",
		Dialer:            net.Dialer{Timeout: o.Timeout},
		ConnWriteTimeout:  o.Timeout,
		DisableCache:      true,
		ForceSingleClient: true,
		RetryDelay:        retryOnce,
	})
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", o.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := c.Do(pctx, c.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", o.Addr, err)
	}
	return c, nil
}

// retryOnce lets the client send a retryable command once more, at once, when it fails on a
// broken connection: the first command after the server closed an idle connection or
// restarted meets the old connection's error, and is sent again on a new one. A server that is
// down fails the second attempt too, without waiting.
func retryOnce(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts > 1 {
		return -1
	}
	return 0
}

// Redis is the Backend that the instances of a deployment share. Each method is one command
// or one Lua script, so it is atomic on the server however many instances call it; the
// scripts read the server's clock (TIME), so instances whose clocks disagree still agree on
// every bucket and window. Every key gets a time to live, so nothing stays longer than its
// state matters, and is named Prefix + a letter for the method + ":" + the caller's key.
//
// The key layout: a bucket is a hash {tokens, at} (at in seconds of the server's clock) that
// lives until it would be full again; slots are a sorted set of slot ids scored by the end of
// their lease (milliseconds), living until the last lease ends; a counter is a string holding
// its total, living until its expires; a window is a sorted set of events scored by their time
// (microseconds) with unique members, trimmed to the window and to WindowCap, living for one
// window; a mark is a string living for its ttl. Admit's parts are these same keys.
//
// A call that fails on a broken connection is sent once more on a new one (see retryOnce).
// When the first attempt did reach the server, the call counts twice, always in the cautious
// direction: a token or an amount too many taken, which refuses sooner. Count and Acquire
// send the same event or slot id again, which the server holds once.
type Redis struct {
	client  rueidis.Client
	addr    string
	prefix  string
	timeout time.Duration
	ids     *idSource
}

// NewRedis connects to the server opts names. It fails, naming the address, when the server
// does not answer within opts.Timeout.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	c, err := dialRedis(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return &Redis{client: c, addr: opts.Addr, prefix: opts.Prefix, timeout: opts.Timeout, ids: newIDSource()}, nil
}

// Close closes the connections.
func (r *Redis) Close() { r.client.Close() }

func (r *Redis) fail(op string, err error) error {
	return fmt.Errorf("%s on redis at %s: %w", op, r.addr, err)
}

// takeScript is Take: KEYS[1] the bucket, ARGV rate, burst, cost. It returns {1, 0} when the
// tokens were taken, else {0, microseconds until they would be}.
var takeScript = rueidis.NewLuaScriptRetryable(`
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(s[1]), tonumber(s[2])
if tokens == nil or at == nil then
  tokens, at = burst, now
elseif now > at then
  tokens, at = tokens + (now - at) * rate, now
end
if tokens > burst then tokens = burst end
local ok, wait = 0, 0
if tokens >= cost then
  ok, tokens = 1, tokens - cost
else
  wait = math.min(math.ceil((cost - tokens) / rate * 1e6), 1e15)
end
local full = math.min(math.max(math.ceil((burst - tokens) / rate * 1000), 1), 1e15)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], full)
return {ok, wait}
`)

// Take implements Backend.
func (r *Redis) Take(ctx context.Context, key string, rate, burst, cost float64) (bool, time.Duration, error) {
	if err := checkTake(rate, burst, cost); err != nil {
		return false, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := takeScript.Exec(ctx, r.client, []string{r.prefix + "b:" + key},
		[]string{formatFloat(rate), formatFloat(burst), formatFloat(cost)}).AsIntSlice()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("the take script answered %d values", len(v))
	}
	if err != nil {
		return false, 0, r.fail("take", err)
	}
	return v[0] == 1, time.Duration(v[1]) * time.Microsecond, nil
}

// acquireScript is Acquire: KEYS[1] the slots, ARGV max, lease in milliseconds, slot id. It
// returns 1 when the slot was taken.
var acquireScript = rueidis.NewLuaScriptRetryable(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)

// Acquire implements Backend. release removes the slot with its own deadline (Timeout),
// detached from ctx's cancellation; when it fails, the lease ends the slot.
func (r *Redis) Acquire(ctx context.Context, key string, maxSlots int, lease time.Duration) (func(), bool, error) {
	if err := checkAcquire(maxSlots, lease); err != nil {
		return nil, false, err
	}
	k, id := r.prefix+"s:"+key, r.ids.next()
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := acquireScript.Exec(cctx, r.client, []string{k},
		[]string{strconv.Itoa(maxSlots), strconv.FormatInt(millis(lease), 10), id}).AsInt64()
	if err != nil {
		return nil, false, r.fail("acquire", err)
	}
	if n != 1 {
		return nil, false, nil
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		r.client.Do(rctx, r.client.B().Zrem().Key(k).Member(id).Build().ToRetryable())
	}
	return release, true, nil
}

// addScript is Add: KEYS[1] the counter, ARGV amount, limit, expires in Unix milliseconds. It
// returns {1, total after} or {0, total as it stands}, totals formatted as text.
var addScript = rueidis.NewLuaScriptRetryable(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local amount, limit, ends = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local total = cur + amount
if total > limit then return {0, string.format('%.17g', cur)} end
if ends > now then
  redis.call('SET', KEYS[1], string.format('%.17g', total), 'PXAT', ends)
else
  redis.call('DEL', KEYS[1])
end
return {1, string.format('%.17g', total)}
`)

// Add implements Backend; expires is read on the server's clock.
func (r *Redis) Add(ctx context.Context, key string, amount, limit float64, expires time.Time) (float64, bool, error) {
	if err := checkAdd(amount, limit); err != nil {
		return 0, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := addScript.Exec(ctx, r.client, []string{r.prefix + "a:" + key},
		[]string{formatFloat(amount), formatFloat(limit), strconv.FormatInt(expires.UnixMilli(), 10)}).ToArray()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("the add script answered %d values", len(v))
	}
	var ok int64
	var total float64
	if err == nil {
		ok, err = v[0].AsInt64()
	}
	if err == nil {
		total, err = v[1].AsFloat64()
	}
	if err != nil {
		return 0, false, r.fail("add", err)
	}
	return total, ok == 1, nil
}

// countScript is Count: KEYS[1] the window, ARGV window in microseconds, the most events
// kept, a unique member. It returns the events within the window, this one included.
var countScript = rueidis.NewLuaScriptRetryable(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
  n = cap
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return n
`)

// Count implements Backend.
func (r *Redis) Count(ctx context.Context, key string, window time.Duration) (int, error) {
	if err := checkDuration("window", window); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := countScript.Exec(ctx, r.client, []string{r.prefix + "w:" + key},
		[]string{strconv.FormatInt(micros(window), 10), strconv.Itoa(WindowCap), r.ids.next()}).AsInt64()
	if err != nil {
		return 0, r.fail("count", err)
	}
	return int(n), nil
}

// Mark implements Backend.
func (r *Redis) Mark(ctx context.Context, key string, ttl time.Duration) error {
	if err := checkDuration("ttl", ttl); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.client.Do(ctx, r.client.B().Set().Key(r.prefix+"m:"+key).Value("1").PxMilliseconds(millis(ttl)).Build().ToRetryable()).Error()
	if err != nil {
		return r.fail("mark", err)
	}
	return nil
}

// Seen implements Backend.
func (r *Redis) Seen(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := r.client.Do(ctx, r.client.B().Exists().Key(r.prefix+"m:"+key).Build()).AsInt64()
	if err != nil {
		return false, r.fail("seen", err)
	}
	return n == 1, nil
}

// admitScript is Admit: one script, so one round trip and atomic on the server. KEYS are the
// batch's keys in its order — marks, buckets, slots, counters — and ARGV starts with how many
// of each, then rate, burst, cost for each bucket; max, lease in milliseconds, slot id for each
// slot; amount, limit, expires in Unix milliseconds for each counter. The script reads the
// server's clock once and checks every part as the single scripts do (takeScript,
// acquireScript, addScript), writing nothing; the first part that refuses ends it with {0,
// part (1 mark, 2 bucket, 3 slot, 4 counter), index from 0, value}: the microseconds until a
// bucket's tokens are back, or a counter's total as it stands. Only when every part holds does
// it write them all, and answer {1}.
var admitScript = rueidis.NewLuaScriptRetryable(`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nm, nb, ns, nc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local kb, ks, kc = nm, nm + nb, nm + nb + ns
local ab, as, ac = 4, 4 + 3 * nb, 4 + 3 * nb + 3 * ns
local function fmt(x) return string.format('%.17g', x) end
local function earlier(first, i)
  for j = i - 1, 1, -1 do
    if KEYS[first + j] == KEYS[first + i] then return j end
  end
  return nil
end
for i = 1, nm do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {0, 1, i - 1, '0'} end
end
local tokens, at = {}, {}
for i = 1, nb do
  local rate, burst, cost = tonumber(ARGV[ab + 3 * i - 2]), tonumber(ARGV[ab + 3 * i - 1]), tonumber(ARGV[ab + 3 * i])
  local v, a
  local j = earlier(kb, i)
  if j then
    v, a = tokens[j], at[j]
  else
    local s = redis.call('HMGET', KEYS[kb + i], 'tokens', 'at')
    v, a = tonumber(s[1]), tonumber(s[2])
    if v == nil or a == nil then v, a = burst, now end
  end
  if now > a then v, a = v + (now - a) * rate, now end
  if v > burst then v = burst end
  if v < cost then
    return {0, 2, i - 1, fmt(math.min(math.ceil((cost - v) / rate * 1e6), 1e15))}
  end
  tokens[i], at[i] = v - cost, a
end
for i = 1, ns do
  local held = redis.call('ZCOUNT', KEYS[ks + i], string.format('(%.17g', nowms), '+inf')
  for j = 1, i - 1 do
    if KEYS[ks + j] == KEYS[ks + i] then held = held + 1 end
  end
  if held >= tonumber(ARGV[as + 3 * i - 2]) then return {0, 3, i - 1, '0'} end
end
local totals = {}
for i = 1, nc do
  local cur
  local j = earlier(kc, i)
  if j then cur = totals[j] else cur = tonumber(redis.call('GET', KEYS[kc + i]) or '0') end
  local total = cur + tonumber(ARGV[ac + 3 * i - 2])
  if total > tonumber(ARGV[ac + 3 * i - 1]) then return {0, 4, i - 1, fmt(cur)} end
  totals[i] = total
end
for i = 1, nb do
  local rate, burst = tonumber(ARGV[ab + 3 * i - 2]), tonumber(ARGV[ab + 3 * i - 1])
  local full = math.min(math.max(math.ceil((burst - tokens[i]) / rate * 1000), 1), 1e15)
  redis.call('HSET', KEYS[kb + i], 'tokens', fmt(tokens[i]), 'at', fmt(at[i]))
  redis.call('PEXPIRE', KEYS[kb + i], full)
end
for i = 1, ns do
  local k = KEYS[ks + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', nowms)
  redis.call('ZADD', k, nowms + tonumber(ARGV[as + 3 * i - 1]), ARGV[as + 3 * i])
  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', k, last[2])
end
for i = 1, nc do
  local ends = tonumber(ARGV[ac + 3 * i])
  if ends > nowms then
    redis.call('SET', KEYS[kc + i], fmt(totals[i]), 'PXAT', ends)
  else
    redis.call('DEL', KEYS[kc + i])
  end
end
return {1}
`)

// Admit implements Backend: one script (admitScript), one round trip. Release removes every
// slot the batch acquired in one more round trip (the removals pipelined), synchronous so that
// the slot is free before the call's answer leaves, with its own deadline (Timeout) detached
// from ctx's cancellation; when it fails, the leases end the slots.
func (r *Redis) Admit(ctx context.Context, b *Batch) (BatchResult, error) {
	if err := b.check(); err != nil {
		return BatchResult{}, err
	}
	n := b.parts()
	if n == 0 {
		return BatchResult{OK: true, Release: noRelease}, nil
	}
	keys := make([]string, 0, n)
	args := make([]string, 4, 4+3*n)
	args[0], args[1], args[2], args[3] = strconv.Itoa(len(b.Seen)), strconv.Itoa(len(b.Buckets)), strconv.Itoa(len(b.Slots)), strconv.Itoa(len(b.Counters))
	for _, k := range b.Seen {
		keys = append(keys, r.prefix+"m:"+k)
	}
	for i := range b.Buckets {
		p := &b.Buckets[i]
		keys = append(keys, r.prefix+"b:"+p.Key)
		args = append(args, formatFloat(p.Rate), formatFloat(p.Burst), formatFloat(p.Cost))
	}
	var ids []string
	for i := range b.Slots {
		p := &b.Slots[i]
		id := r.ids.next()
		ids = append(ids, id)
		keys = append(keys, r.prefix+"s:"+p.Key)
		args = append(args, strconv.Itoa(p.Max), strconv.FormatInt(millis(p.Lease), 10), id)
	}
	for i := range b.Counters {
		p := &b.Counters[i]
		keys = append(keys, r.prefix+"a:"+p.Key)
		args = append(args, formatFloat(p.Amount), formatFloat(p.Limit), strconv.FormatInt(p.Expires.UnixMilli(), 10))
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := admitScript.Exec(cctx, r.client, keys, args).ToArray()
	res, err := readAdmit(v, err)
	if err != nil {
		return BatchResult{}, r.fail("admit", err)
	}
	if !res.OK {
		return res, nil
	}
	res.Release = noRelease
	if len(ids) > 0 {
		slots := keys[len(b.Seen)+len(b.Buckets) : len(b.Seen)+len(b.Buckets)+len(b.Slots)]
		var done atomic.Bool
		res.Release = func() {
			if done.Swap(true) {
				return
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
			defer cancel()
			cmds := make(rueidis.Commands, len(ids))
			for i, id := range ids {
				cmds[i] = r.client.B().Zrem().Key(slots[i]).Member(id).Build().ToRetryable()
			}
			r.client.DoMulti(rctx, cmds...)
		}
	}
	return res, nil
}

// readAdmit reads admitScript's answer.
func readAdmit(v []rueidis.RedisMessage, err error) (BatchResult, error) {
	if err != nil {
		return BatchResult{}, err
	}
	if len(v) == 1 {
		ok, err := v[0].AsInt64()
		if err != nil || ok != 1 {
			return BatchResult{}, fmt.Errorf("the admit script answered %v (%v)", ok, err)
		}
		return BatchResult{OK: true}, nil
	}
	if len(v) != 4 {
		return BatchResult{}, fmt.Errorf("the admit script answered %d values", len(v))
	}
	part, err1 := v[1].AsInt64()
	index, err2 := v[2].AsInt64()
	s, err3 := v[3].ToString()
	if err := errors.Join(err1, err2, err3); err != nil {
		return BatchResult{}, fmt.Errorf("the admit script's refusal: %w", err)
	}
	value, err := strconv.ParseFloat(s, 64)
	if err != nil || part < int64(PartSeen) || part > int64(PartCounter) {
		return BatchResult{}, fmt.Errorf("the admit script's refusal: part %d, value %q", part, s)
	}
	res := BatchResult{Refused: Part(part), Index: int(index)}
	switch res.Refused {
	case PartBucket:
		res.RetryAfter = time.Duration(value) * time.Microsecond
	case PartCounter:
		res.Total = value
	}
	return res, nil
}

// millis converts d to whole milliseconds, rounded up, at least 1 and at most maxMillis.
func millis(d time.Duration) int64 { return roundUp(d, time.Millisecond) }

// micros converts d to whole microseconds, rounded up, at least 1 and at most maxMillis.
func micros(d time.Duration) int64 { return roundUp(d, time.Microsecond) }

func roundUp(d, unit time.Duration) int64 {
	n := d / unit
	if d%unit > 0 {
		n++
	}
	return int64(min(max(n, 1), maxMillis))
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// idSource names slots and events uniquely across instances: a random prefix per process and a
// counter.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [8]byte
	rand.Read(b[:])
	return &idSource{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (s *idSource) next() string { return s.prefix + strconv.FormatUint(s.n.Add(1), 36) }
