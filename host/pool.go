package host

import (
	"context"
	"sync/atomic"
	"time"
)

// pool holds the instances one plugin keeps for its next calls, and makes
// them: an instance reset after its call, or one made ahead for a
// sequential run of a plugin whose instances serve one call each.
//
// Invariants:
//
//   - An instance is in idle or used by exactly one call, never both, and
//     no call uses an instance another call uses.
//   - An instance in idle has its reset done or under way; take returns it
//     only once the reset is done (ready closed).
//   - Every instance, idle or in use, holds its reservation of the host's
//     memory budget until it is closed. While calls wait for budget
//     (Host.waiting > 0), no instance is kept: put and refill close theirs
//     instead, and a call that starts to wait drops the idle ones.
//   - idle never holds more than its capacity; an instance that does not
//     fit is closed.
//   - At most one refill runs at a time.
//   - Resets, closes and refills run as the host's background work, which
//     Host.Close waits for; once it has begun they run inline or not at
//     all, so no goroutine outlives the host.
type pool struct {
	p    *Plugin
	idle chan *instance
	// refilling is set while a refill runs; inflight counts the calls in
	// an instance now.
	refilling atomic.Bool
	inflight  atomic.Int32
	// lastTimeout bounds the start-up of an instance made ahead: the
	// timeout of the plugin's latest call.
	lastTimeout atomic.Int64
	resets      atomic.Int64
}

func newPool(p *Plugin, size int) *pool {
	return &pool{p: p, idle: make(chan *instance, size)}
}

// take returns an instance kept for the next call, if there is one, once
// its reset is done.
func (pl *pool) take() *instance {
	select {
	case in := <-pl.idle:
		if in.ready != nil {
			<-in.ready
			in.ready = nil
		}
		return in
	default:
		return nil
	}
}

// begin counts a call starting in an instance; for a sequential run (the
// only call in flight) of a plugin whose instances serve one call each
// (reuse false), the next call's instance is made ahead.
func (pl *pool) begin(reuse, mounts bool) {
	if n := pl.inflight.Add(1); n == 1 && !reuse && !mounts {
		pl.refill()
	}
}

// put takes an instance back after its call. When the call ended cleanly
// and the instance can be reset, it is kept for the next call at once and
// reset in the background (the next call waits for the reset, which takes
// microseconds, rather than make an instance, which takes milliseconds).
// Otherwise it is closed in the background, and a sequential run (no other
// call of the plugin in flight) gets the next call's instance made ahead.
func (pl *pool) put(in *instance, clean, ahead bool) {
	pl.inflight.Add(-1)
	h := pl.p.host
	if clean && h.waiting.Load() == 0 && in.resettable() {
		ready := make(chan struct{})
		in.ready = ready
		select {
		case pl.idle <- in:
			reset := func() {
				in.reset()
				pl.resets.Add(1)
				close(ready)
			}
			if !h.background(reset) {
				reset()
			}
			return
		default:
			in.ready = nil
		}
	}
	if !h.background(func() {
		in.close()
		if ahead && pl.inflight.Load() == 0 {
			pl.refill()
		}
	}) {
		in.close()
	}
}

// refill makes the next call's instance in the background, so that
// instantiation and start-up are off the critical path of a sequential run.
func (pl *pool) refill() {
	if len(pl.idle) > 0 || !pl.refilling.CompareAndSwap(false, true) {
		return
	}
	p := pl.p
	started := p.host.background(func() {
		defer pl.refilling.Store(false)
		if len(pl.idle) > 0 || !p.host.budget.TryAcquire(p.reservation()) {
			return
		}
		ctx, cancel := context.WithTimeout(p.host.bg, time.Duration(pl.lastTimeout.Load()))
		in, err := p.newInstance(ctx, nil, true)
		cancel()
		if err != nil {
			return // the next call instantiates inline and reports the error
		}
		if p.host.waiting.Load() > 0 {
			// Calls began waiting for budget meanwhile: it is theirs.
			in.close()
			return
		}
		select {
		case pl.idle <- in:
		default:
			in.close()
		}
	})
	if !started {
		pl.refilling.Store(false)
	}
}

// drop closes every instance kept, giving their memory budget back.
func (pl *pool) drop() {
	for in := pl.take(); in != nil; in = pl.take() {
		in.close()
	}
}
