package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/12fa/12fa/abi"
)

// ContextReader gives a call read access to its run's workflow context.
type ContextReader interface {
	// Get returns the JSON value under key, if any.
	Get(key string) (json.RawMessage, bool)
}

// InputProvider answers a step's questions (input_request). The runtime
// gives each call one bound to its run and step.
type InputProvider interface {
	// RequestInput returns the answer to req, or records it as pending.
	RequestInput(ctx context.Context, req abi.InputRequest) (abi.InputResponse, error)
}

// Notifier sends a step's notifications (notify). The runtime gives each
// call one that applies the run's rate limit.
type Notifier interface {
	// Notify sends n; abi.StatusLimited-style refusals come back as
	// ErrLimited.
	Notify(ctx context.Context, n abi.Notification) error
}

// ErrLimited is what a Notifier returns when a rate limit drops a
// notification.
var ErrLimited = errors.New("rate limit reached")

// LogLine is one line a guest logged, or one line of its stderr or stdout.
type LogLine struct {
	Time    time.Time    `json:"time"`
	Level   abi.LogLevel `json:"-"`
	Source  string       `json:"source"` // "log", "stderr" or "stdout"
	Message string       `json:"message"`
}

// Request describes one call.
type Request struct {
	// Function is the export to call; abi.DefaultFunction when empty.
	Function string
	// Input is the input document (the envelope).
	Input []byte
	// Config is readable by the guest through Extism's config_get.
	Config map[string]string
	// Timeout bounds the call's wall-clock time. Required.
	Timeout time.Duration
	// MaxOutputBytes bounds the output; abi.DefaultMaxOutputBytes when 0.
	MaxOutputBytes int
	// Context is the run's workflow context, for ctx_get. May be nil.
	Context ContextReader
	// ContextBytes is what Context holds now, counted as ContextEntryBytes
	// does; ctx_set keeps the run's total within abi.MaxContextBytes.
	ContextBytes int
	// Mounts grants directories to the guest.
	Mounts []Mount
	// OnLog, when set, sees each log line as the guest writes it.
	OnLog func(LogLine)
	// Inputs answers input_request; without it the function is refused.
	Inputs InputProvider
	// Notifier sends notify's notifications; without it notify returns
	// StatusDenied.
	Notifier Notifier
	// HTTP sends the attempt's HTTP requests (12fa's http and Extism's
	// http_request) under the step's grants; without it every request is
	// refused with http_denied.
	HTTP HTTPDoer
	// Exec runs the attempt's commands; without it exec is refused with
	// exec_denied.
	Exec Execer
}

// Execer runs one attempt's commands (12fa's exec) under the step's
// grants. Exec never fails in Go: a refusal is in the response.
type Execer interface {
	Exec(ctx context.Context, req abi.ExecRequest) abi.ExecResponse
}

// HTTPDoer sends one attempt's HTTP requests. Do never fails in Go: a
// request that gets no response comes back with Error set.
type HTTPDoer interface {
	Do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse
}

// Result is what a call produced. On failure it still holds the logs and
// captured stderr, so that a plugin author can see what happened.
type Result struct {
	Output []byte
	// ContextWrites holds the ctx_set calls of the attempt, last write wins;
	// a JSON null deletes the key.
	ContextWrites map[string]json.RawMessage
	Logs          []LogLine
	// LogsDropped counts log lines over the per-attempt limits.
	LogsDropped int
	Duration    time.Duration
	// Pending lists the ids of the questions the call asked that have no
	// answer yet: the step must wait for them.
	Pending []string
}

// attempt is the state of one call, reachable from host functions through
// the call's context.
type attempt struct {
	req *Request

	mu          sync.Mutex
	writes      map[string]json.RawMessage
	writeBytes  int // the journal bytes of writes
	ctxBytes    int // the run's context with writes applied
	logs        []LogLine
	logBytes    int
	logsDropped int
	violation   *CallError
	mem         *memTracker
	k           *kernel
	asked       int
	pending     []string
	notified    int
	// httpStatus and httpHeaders are the last Extism http_request's, for
	// http_status_code and http_headers.
	httpStatus  int
	httpHeaders map[string][]string
	vars        vars
}

// Call runs one function of the plugin. The instance it runs in starts in
// the state the plugin's start-up left it in: fresh, or reset to exactly
// that state (see snapshot); it never sees what another call left behind.
func (p *Plugin) Call(ctx context.Context, req Request) (*Result, error) {
	if req.Function == "" {
		req.Function = abi.DefaultFunction
	}
	if req.MaxOutputBytes <= 0 {
		req.MaxOutputBytes = abi.DefaultMaxOutputBytes
	}
	if req.Timeout <= 0 {
		return nil, errors.New("host: call without a timeout")
	}
	if !p.Exports[req.Function] {
		return nil, callErr(ErrNoFunction, "plugin exports no function %q of type () -> i32", req.Function)
	}
	a := &attempt{req: &req, writes: make(map[string]json.RawMessage), ctxBytes: req.ContextBytes}
	p.lastTimeout.Store(int64(req.Timeout))
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()

	res := &Result{}
	var in *instance
	finish := func(err error) (*Result, error) {
		res.Duration = time.Since(start)
		if in != nil {
			a.addOutputLines("stderr", in.stderr)
			a.addOutputLines("stdout", in.stdout)
		}
		a.mu.Lock()
		res.ContextWrites, res.LogsDropped, res.Pending, res.Logs = a.writes, a.logsDropped, a.pending, a.logs
		a.mu.Unlock()
		return res, err
	}
	if len(req.Mounts) == 0 {
		in = p.takeIdle()
	}
	if in == nil {
		if err := p.reserve(ctx, callCtx, req.Timeout); err != nil {
			return finish(err)
		}
		var err error
		// The plugin's first instance in this process skips the warm-up
		// (prepare and snapshot) and serves this call alone, while the next
		// call's instance, warm, is made in the background: a one-step run,
		// or the first step after a restart, does not wait for work that
		// only later calls profit from.
		warm := p.instances.Load() > 0
		if in, err = p.newInstance(callCtx, req.Mounts, warm); err != nil {
			var ce *CallError
			if errors.As(err, &ce) {
				return finish(err)
			}
			a.mem, a.k = in.mem, in.k
			if cerr := a.classify(ctx, callCtx, err, in.stderr, req.Timeout); cerr.Cause != ErrTrap {
				return finish(cerr)
			}
			return finish(callErr(ErrInstantiate, "%s", firstLine(err.Error())))
		}
	}
	a.mem, a.k = in.mem, in.k
	p.calls.Add(1)
	reuse := in.snap != nil
	if n := p.inflight.Add(1); n == 1 && !reuse && len(req.Mounts) == 0 {
		// A plugin whose instances serve one call each, called one call at a
		// time (a sequential run), gets the next call's instance made ahead.
		p.refill()
	}
	clean := false
	defer func() {
		p.inflight.Add(-1)
		p.recycle(in, clean, reuse)
	}()

	if err := in.k.setInput(req.Input); err != nil {
		return finish(callErr(ErrMemoryLimit, "the input (%d bytes) does not fit the kernel memory", len(req.Input)))
	}
	rc, err := in.call(callCtx, req.Function, a)
	exited := false
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 && callCtx.Err() == nil {
		// The guest exited with success: its instance is gone, its output
		// stands.
		err, exited = nil, true
	}
	if err != nil {
		return finish(a.classify(ctx, callCtx, err, in.stderr, req.Timeout))
	}
	if a.violation != nil {
		return finish(a.violation)
	}
	clean = !exited
	out, _ := in.k.outputBytes()
	if msg, ok := in.k.errorText(); ok {
		return finish(guestErr(msg))
	}
	if rc := int32(uint32(rc)); rc != 0 {
		return finish(guestErr(fmt.Sprintf("function %s returned %d without an error message", req.Function, rc)))
	}
	if len(out) > req.MaxOutputBytes {
		return finish(callErr(ErrOutputTooLarge, "%d bytes, the limit is %d", len(out), req.MaxOutputBytes))
	}
	res.Output = bytes.Clone(out)
	return finish(nil)
}

func guestErr(msg string) *CallError {
	if len(msg) > abi.MaxErrorBytes {
		msg = msg[:abi.MaxErrorBytes]
	}
	doc := abi.ParseErrorDoc([]byte(msg))
	return &CallError{Cause: ErrPluginFailed, Detail: doc.Error(), Guest: &doc}
}

// classify turns the error of a failed instantiation or call into a
// *CallError with a named cause.
func (a *attempt) classify(parent, callCtx context.Context, err error, stderr *boundedBuffer, timeout time.Duration) *CallError {
	// The cause is what ended the call: a broken host call, the caller, the
	// deadline; only a trap is put down to memory, when a memory was at its
	// cap (an allocation refused earlier in the call does not make a later
	// timeout or bad host call a memory limit).
	if a.violation != nil {
		return a.violation
	}
	if parent.Err() != nil {
		return callErr(ErrCanceled, "%v", parent.Err())
	}
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return callErr(ErrTimeout, "the call ran longer than %s and was stopped", timeout)
	}
	detail := firstLine(err.Error())
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		detail = fmt.Sprintf("guest exited with code %d", exit.ExitCode())
	}
	if hint := panicLine(stderr.String()); hint != "" {
		detail += " (" + hint + ")"
	}
	if a.mem.atCap() {
		return callErr(ErrMemoryLimit, "a linear memory reached its cap of %d pages: %s", a.mem.maxPages(), detail)
	}
	if a.k != nil && a.k.hitCap {
		return callErr(ErrMemoryLimit, "the kernel memory reached its cap of %d pages: %s", a.k.max/PageSize, detail)
	}
	return callErr(ErrTrap, "%s", detail)
}

// panicLine finds the line of a guest's stderr that says why it died.
func panicLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		for _, p := range []string{"panic: ", "fatal error: ", "thread 'main' panicked", "memory allocation of"} {
			if strings.HasPrefix(l, p) {
				if len(l) > 200 {
					l = l[:200] + "…"
				}
				return l
			}
		}
	}
	return ""
}

// addOutputLines moves captured stderr or stdout into the attempt's log.
func (a *attempt) addOutputLines(source string, b *boundedBuffer) {
	s := b.String()
	if s == "" {
		return
	}
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		a.addLog(LogLine{Time: time.Now(), Level: abi.LogInfo, Source: source, Message: l})
	}
	if b.dropped > 0 {
		a.addLog(LogLine{Time: time.Now(), Level: abi.LogWarn, Source: source,
			Message: fmt.Sprintf("[%d more bytes of %s dropped]", b.dropped, source)})
	}
}

// addLog keeps a line within the per-attempt limits and reports whether it
// was kept.
func (a *attempt) addLog(l LogLine) bool {
	if len(l.Message) > abi.MaxLogLineBytes {
		l.Message = l.Message[:abi.MaxLogLineBytes] + "…"
	}
	a.mu.Lock()
	if len(a.logs) >= abi.MaxLogLines || a.logBytes+len(l.Message) > abi.MaxLogBytes {
		a.logsDropped++
		a.mu.Unlock()
		return false
	}
	a.logs = append(a.logs, l)
	a.logBytes += len(l.Message)
	a.mu.Unlock()
	if a.req.OnLog != nil {
		a.req.OnLog(l)
	}
	return true
}

// boundedBuffer keeps the first max bytes written to it and counts the rest.
type boundedBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (b *boundedBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf, b.dropped = b.buf[:0], 0
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

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

const (
	// poolPerSize bounds the buffers kept for one capacity.
	poolPerSize = 16
	// poolBytes bounds the bytes kept in all.
	poolBytes = 512 << 20
)

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
