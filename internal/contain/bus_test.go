package contain_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
)

// subscriber runs bus.Subscribe until the test ends, counting resyncs and passing messages on.
type subscriber struct {
	msgs    chan string
	resyncs atomic.Int32
	done    chan error
}

func subscribe(t *testing.T, bus contain.Bus) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{msgs: make(chan string, 16), done: make(chan error, 1)}
	go func() {
		s.done <- bus.Subscribe(ctx, func(msg []byte) { s.msgs <- string(msg) }, func() { s.resyncs.Add(1) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Subscribe returned %v when its context ended, want nil", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Subscribe did not return when its context ended")
		}
	})
	return s
}

// receive waits for the next message.
func (s *subscriber) receive(t *testing.T) string {
	t.Helper()
	select {
	case msg := <-s.msgs:
		return msg
	case <-time.After(20 * time.Second):
		t.Fatal("no message within 20s")
		return ""
	}
}

func TestLocalBus(t *testing.T) {
	t.Parallel()
	bus := contain.NewLocalBus()
	a, b := subscribe(t, bus), subscribe(t, bus)
	eventually(t, "both subscribed", func() bool { return a.resyncs.Load() == 1 && b.resyncs.Load() == 1 })
	msg := []byte("block 192.0.2.1")
	if err := bus.Publish(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	copy(msg, "XXXXX") // the publisher's buffer is its own again
	for _, s := range []*subscriber{a, b} {
		if got := s.receive(t); got != "block 192.0.2.1" {
			t.Errorf("received %q", got)
		}
	}
}

// TestRedisBus: a message published on one instance reaches a subscriber on another (two
// clients); the subscriber resyncs when it first subscribes and again when the server restarts.
func TestRedisBus(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	newBus := func() *contain.RedisBus {
		bus, err := contain.NewRedisBus(t.Context(), contain.RedisOptions{Addr: srv.addr, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		return bus
	}
	publisher, other := newBus(), newBus()
	s := subscribe(t, other)
	eventually(t, "the first subscription resyncs", func() bool { return s.resyncs.Load() == 1 })
	if err := publisher.Publish(t.Context(), []byte("block 192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if got := s.receive(t); got != "block 192.0.2.1" {
		t.Fatalf("received %q", got)
	}

	srv.stop()
	srv.start()
	eventually(t, "the subscription after the restart resyncs", func() bool { return s.resyncs.Load() == 2 })
	eventually(t, "publish after the restart", func() bool {
		return publisher.Publish(t.Context(), []byte("lift 192.0.2.1")) == nil
	})
	if got := s.receive(t); got != "lift 192.0.2.1" {
		t.Fatalf("received %q after the restart", got)
	}
}

func TestNewRedisNamesAnUnreachableAddress(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: one just released.
	srv := startRedis(t)
	addr := srv.addr
	srv.stop()
	_, err := contain.NewRedis(t.Context(), contain.RedisOptions{Addr: addr})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("NewRedis on a closed port: %v, want an error naming %s", err, addr)
	}
	if _, err := contain.NewRedisBus(t.Context(), contain.RedisOptions{Addr: addr}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("NewRedisBus on a closed port: %v, want an error naming %s", err, addr)
	}
}
