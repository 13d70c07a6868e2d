package contain

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Block kinds.
const (
	BlockAddress   = "address"   // a client address refused before authentication
	BlockPrincipal = "principal" // a suspended principal, refused after authentication
	BlockApproval  = "approval"  // a principal whose every call waits for a human's approval
)

// Block is a client address refused, or a principal suspended, until Expires (zero: until an
// operator lifts it).
type Block struct {
	Kind  string `json:"kind"`  // BlockAddress or BlockPrincipal
	Value string `json:"value"` // the address (canonical form) or the principal's identity key
	// Reason says why, for operators and the audit record.
	Reason string `json:"reason"`
	// Actor is who put it in place: "mcpguard" for an automatic response, else the operator.
	Actor   string    `json:"actor"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// Repeat counts the blocks of this value in a row (a block's duration doubles with each).
	Repeat int `json:"repeat,omitempty"`
}

// Active reports whether the block holds at now.
func (b *Block) Active(now time.Time) bool { return b.Expires.IsZero() || now.Before(b.Expires) }

// AutomaticActor is the Actor of blocks and suspensions the gateway puts in place itself.
const AutomaticActor = "mcpguard"

// maxBlockValue bounds a block's value: an address, or a principal's identity key.
const maxBlockValue = 1024

// Validate checks a block before it is stored.
func (b *Block) Validate() error {
	switch b.Kind {
	case BlockAddress:
		a, err := netip.ParseAddr(b.Value)
		if err != nil || a.Zone() != "" || a.Is4In6() || a.String() != b.Value {
			return errors.New("an address block needs an IP address in canonical form (\"203.0.113.7\", \"2001:db8::1\")")
		}
	case BlockPrincipal, BlockApproval:
		if b.Value == "" || len(b.Value) > maxBlockValue {
			return errors.New("a suspension needs a principal of 1 to 1024 bytes")
		}
	default:
		return errors.New(`a block's kind is "address", "principal" or "approval"`)
	}
	if b.Reason == "" {
		return errors.New("a block needs a reason")
	}
	if b.Actor == "" {
		return errors.New("a block needs an actor")
	}
	return nil
}

// BlockStore keeps blocks and suspensions durably, so that a restart — of the gateway or of
// Redis — forgets none. Every instance of a deployment reads the same store.
type BlockStore interface {
	// PutBlock stores b, replacing a block of the same kind and value.
	PutBlock(ctx context.Context, b Block) error
	// LiftBlock removes the block of that kind and value, reporting whether there was one.
	LiftBlock(ctx context.Context, kind, value string) (bool, error)
	// Blocks lists the blocks active at now, at most limit of them.
	Blocks(ctx context.Context, now time.Time, limit int) ([]Block, error)
}

// MaxBlocks bounds the blocks an instance holds in memory.
const MaxBlocks = 100_000

// blockSet is the blocks in force, read lock-free on every request and replaced whole when they
// change (they change rarely).
type blockSet struct {
	cur atomic.Pointer[map[string]Block]
	mu  sync.Mutex // serialises writers
}

func blockKey(kind, value string) string { return kind + "\x00" + value }

func (s *blockSet) lookup(kind, value string, now time.Time) (Block, bool) {
	m := s.cur.Load()
	if m == nil {
		return Block{}, false
	}
	b, ok := (*m)[blockKey(kind, value)]
	if !ok || !b.Active(now) {
		return Block{}, false
	}
	return b, true
}

// replace installs the blocks of a full resynchronisation.
func (s *blockSet) replace(list []Block) {
	m := make(map[string]Block, len(list))
	for _, b := range list {
		m[blockKey(b.Kind, b.Value)] = b
	}
	s.mu.Lock()
	s.cur.Store(&m)
	s.mu.Unlock()
}

// apply adds (put) or removes one block, dropping expired ones on the way; a full set refuses
// new blocks beyond MaxBlocks (the store still holds them; the next resynchronisation loads
// the first MaxBlocks).
func (s *blockSet) apply(b Block, put bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	m := make(map[string]Block, 1)
	if old != nil {
		m = make(map[string]Block, len(*old)+1)
		for k, v := range *old {
			if v.Active(now) {
				m[k] = v
			}
		}
	}
	k := blockKey(b.Kind, b.Value)
	if put {
		if _, exists := m[k]; exists || len(m) < MaxBlocks {
			m[k] = b
		}
	} else {
		delete(m, k)
	}
	s.cur.Store(&m)
}

func (s *blockSet) list(now time.Time) []Block {
	m := s.cur.Load()
	if m == nil {
		return nil
	}
	out := make([]Block, 0, len(*m))
	for _, b := range *m {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	return out
}

// busMessage is what instances tell each other about blocks.
type busMessage struct {
	Op    string `json:"op"` // "put" or "lift"
	Block Block  `json:"block"`
}

func encodeBusMessage(op string, b Block) []byte {
	data, _ := json.Marshal(busMessage{Op: op, Block: b})
	return data
}

func decodeBusMessage(data []byte) (busMessage, bool) {
	var m busMessage
	if len(data) > 4096 || json.Unmarshal(data, &m) != nil {
		return m, false
	}
	if (m.Op != "put" && m.Op != "lift") || m.Block.Validate() != nil && m.Op == "put" {
		return m, false
	}
	return m, true
}
