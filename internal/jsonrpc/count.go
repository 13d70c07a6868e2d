package jsonrpc

import "sync/atomic"

// The readers of this package count their passes over JSON while counting is on, so that a
// benchmark can show how often the gateway reads a request (see CountPasses). Off, the cost is
// one atomic load per pass.
var (
	counting atomic.Bool
	passes   atomic.Int64
)

func countPass() {
	if counting.Load() {
		passes.Add(1)
	}
}

// CountPasses starts counting the passes this package's readers ([Parse], [CheckValue],
// [Decode], [Elements] and every member reader: [Lookup], [Members], [Pick], [SetMember],
// [DeleteMember]) make over JSON, process-wide, and returns a function that stops counting and
// reports the passes made since. It is for benchmarks and tests; counts of concurrent work
// are mixed together.
func CountPasses() (stop func() int64) {
	passes.Store(0)
	counting.Store(true)
	return func() int64 {
		counting.Store(false)
		return passes.Load()
	}
}
