package host

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memTracker is the wazero memory allocator of one call. It takes linear
// memories from the host's pool and notes when one grows to its maximum, so
// that a trap that follows can be named a memory limit.
type memTracker struct {
	pool *memPool
	mu   sync.Mutex
	hit  bool
	max  uint64
}

func (t *memTracker) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	return &trackedMemory{t: t, max: maxBytes, buf: t.pool.get(capacity)}
}

func (t *memTracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hit = false
}

func (t *memTracker) atCap() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hit
}

func (t *memTracker) maxPages() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.max / PageSize
}

type trackedMemory struct {
	t     *memTracker
	max   uint64
	buf   []byte
	grown bool
}

func (m *trackedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.grown && size == m.max {
		m.t.mu.Lock()
		m.t.hit, m.t.max = true, m.max
		m.t.mu.Unlock()
	}
	m.grown = true
	if size <= uint64(cap(m.buf)) {
		// The pool hands out buffers that are zero up to their capacity.
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow by at least a quarter to keep repeated small grows cheap, never
	// past the maximum.
	c := max(size, min(uint64(cap(m.buf))+uint64(cap(m.buf))/4, m.max))
	nb := m.t.pool.get(c)[:size]
	copy(nb, m.buf)
	m.t.pool.put(m.buf)
	m.buf = nb
	return m.buf
}

// Free returns the memory to the pool. wazero calls it when the instance is
// closed, after its last call has returned.
func (m *trackedMemory) Free() {
	m.t.pool.put(m.buf)
	m.buf = nil
}

// memPool recycles linear-memory buffers between instances, so that a fresh
// instance does not pay for allocating and zeroing its memories. A buffer is
// zeroed over the length it was used to before it is kept, so no instance
// ever sees another's bytes; buffers are reused only at the exact capacity
// they were made with (instances of one plugin ask for the same).
type memPool struct {
	mu    sync.Mutex
	free  map[uint64][][]byte
	bytes uint64
}

func newMemPool() *memPool { return &memPool{free: make(map[uint64][][]byte)} }

// get returns a buffer of length 0 and the given capacity, zero throughout.
func (p *memPool) get(capacity uint64) []byte {
	p.mu.Lock()
	if l := p.free[capacity]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[capacity] = l[:len(l)-1]
		p.bytes -= capacity
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, capacity)
}

// put zeroes what was used of b and keeps it, if there is room.
func (p *memPool) put(b []byte) {
	c := uint64(cap(b))
	if c == 0 {
		return
	}
	p.mu.Lock()
	room := len(p.free[c]) < poolPerSize && p.bytes+c <= poolBytes
	p.mu.Unlock()
	if !room {
		return
	}
	clear(b) // b.s length is the most it was used to; beyond it is still zero
	p.mu.Lock()
	if len(p.free[c]) < poolPerSize && p.bytes+c <= poolBytes {
		p.free[c] = append(p.free[c], b[:0])
		p.bytes += c
	}
	p.mu.Unlock()
}

const (
	// poolPerSize bounds the buffers kept for one capacity.
	poolPerSize = 16
	// poolBytes bounds the bytes kept in all.
	poolBytes = 512 << 20
)
