package authn

import (
	"container/list"
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of their text: bounded in entries (least
// recently used goes first), and never serving an entry past its own deadline (the token's exp,
// or sooner).
type tokenCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recently used
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key   [32]byte
	p     Principal
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, ll: list.New(), items: make(map[[32]byte]*list.Element)}
}

func (c *tokenCache) get(key [32]byte, now time.Time) (Principal, bool) {
	if c == nil {
		return Principal{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return Principal{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.ll.Remove(el)
		delete(c.items, key)
		return Principal{}, false
	}
	c.ll.MoveToFront(el)
	return e.p, true
}

func (c *tokenCache) put(key [32]byte, p Principal, until time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &cacheEntry{key: key, p: p, until: until}
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, p: p, until: until})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
