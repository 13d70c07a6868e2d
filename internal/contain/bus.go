package contain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// LocalBus is the Bus of a single instance: Publish hands the message to the subscribers in
// this process. Each subscriber has a queue of localBusQueue messages; a message that finds
// the queue full is dropped and the subscriber resynchronises instead. The zero LocalBus is
// ready to use.
type LocalBus struct {
	mu   sync.Mutex
	subs map[*localSubscriber]struct{}
}

const localBusQueue = 256

type localSubscriber struct {
	msgs chan []byte
	lost chan struct{} // a message was dropped
}

// NewLocalBus returns a LocalBus without subscribers.
func NewLocalBus() *LocalBus { return new(LocalBus) }

// Publish implements Bus. Each subscriber receives its own copy of msg.
func (b *LocalBus) Publish(_ context.Context, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.msgs <- bytes.Clone(msg):
		default:
			select {
			case s.lost <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(ctx context.Context, fn func(msg []byte), resync func()) error {
	s := &localSubscriber{msgs: make(chan []byte, localBusQueue), lost: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[*localSubscriber]struct{})
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	resync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-s.msgs:
			fn(msg)
		case <-s.lost:
			resync()
		}
	}
}

// RedisBus is the Bus of a deployment: Redis pub/sub on the channel Prefix + "events". It has
// its own connections, so a slow subscriber never delays the counters of a Redis backend.
//
// Subscribe holds one connection of its own. When it breaks (the server restarts, the
// network fails) Subscribe dials again, waiting busMinBackoff doubled after each failure up
// to busMaxBackoff, until ctx ends; every subscription the server confirms, the first
// included, calls resync. A server that refuses the subscription itself (an ACL without the
// channel, say) ends Subscribe with its error.
type RedisBus struct {
	client  rueidis.Client
	addr    string
	channel string
	timeout time.Duration
	closed  atomic.Bool
}

const (
	busMinBackoff = 50 * time.Millisecond
	busMaxBackoff = 5 * time.Second
)

// NewRedisBus connects to the server opts names. It fails, naming the address, when the
// server does not answer within opts.Timeout.
func NewRedisBus(ctx context.Context, opts RedisOptions) (*RedisBus, error) {
	c, err := dialRedis(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return &RedisBus{client: c, addr: opts.Addr, channel: opts.Prefix + "events", timeout: opts.Timeout}, nil
}

// Close closes the connections; a Subscribe running returns.
func (b *RedisBus) Close() {
	b.closed.Store(true)
	b.client.Close()
}

// Publish implements Bus, within Timeout.
func (b *RedisBus) Publish(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	err := b.client.Do(ctx, b.client.B().Publish().Channel(b.channel).Message(rueidis.BinaryString(msg)).Build()).Error()
	if err != nil {
		return fmt.Errorf("publish on redis at %s: %w", b.addr, err)
	}
	return nil
}

// ErrBusClosed is Subscribe's error once the bus is closed.
var ErrBusClosed = errors.New("the event bus is closed")

// Subscribe implements Bus.
func (b *RedisBus) Subscribe(ctx context.Context, fn func(msg []byte), resync func()) error {
	// The server's confirmations arrive on the client's reading goroutine, which must not
	// block: they only signal established, and a goroutine of ours calls resync.
	var mu sync.Mutex // fn and resync never run at once
	established := make(chan struct{}, 1)
	var confirmed atomic.Int64
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "subscribe" {
			confirmed.Add(1)
			select {
			case established <- struct{}{}:
			default:
			}
		}
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-established:
				mu.Lock()
				resync()
				mu.Unlock()
			case <-done:
				return
			}
		}
	})
	defer func() {
		close(done)
		wg.Wait()
	}()

	backoff := busMinBackoff
	for {
		before := confirmed.Load()
		conn, release := b.client.Dedicate()
		err := conn.Receive(hooked, conn.B().Subscribe().Channel(b.channel).Build(), func(m rueidis.PubSubMessage) {
			msg := []byte(m.Message)
			mu.Lock()
			fn(msg)
			mu.Unlock()
		})
		release()
		var refused *rueidis.RedisError
		switch {
		case ctx.Err() != nil:
			return nil
		case b.closed.Load():
			return ErrBusClosed
		case errors.As(err, &refused) && !refused.IsLoading():
			return fmt.Errorf("subscribe on redis at %s: %w", b.addr, err)
		case confirmed.Load() != before:
			backoff = busMinBackoff // it was up: the first retry comes soon
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, busMaxBackoff)
	}
}
