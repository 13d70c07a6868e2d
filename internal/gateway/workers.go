package gateway

// workers runs the per-request work of legacy sessions on goroutines that outlive one request,
// so that the stack a call through the pipeline needs is grown once per goroutine rather than
// once per request (stack copying was 9% of the gateway's CPU on the legacy echo benchmark).
// At most cap(idle) goroutines wait for work; beyond that a goroutine ends with its work.
type workers struct {
	idle chan chan func()
}

// maxIdleWorkers bounds the goroutines kept waiting, and the memory their stacks hold.
const maxIdleWorkers = 128

func newWorkers() *workers { return &workers{idle: make(chan chan func(), maxIdleWorkers)} }

// run runs f on an idle worker, or on a new goroutine when none is idle. It never blocks.
func (w *workers) run(f func()) {
	select {
	case ch := <-w.idle:
		ch <- f
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	ch := make(chan func())
	for {
		f()
		f = nil // nothing of the finished request stays reachable while idle
		select {
		case w.idle <- ch:
		default:
			return
		}
		f = <-ch
	}
}
