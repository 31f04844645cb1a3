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

	"github.com/tetratelabs/wazero/sys"

	"github.com/12fa/12fa/abi"
)

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
	p.pool.lastTimeout.Store(int64(req.Timeout))
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
		in = p.pool.take()
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
	p.pool.begin(reuse, len(req.Mounts) > 0)
	clean := false
	defer func() { p.pool.put(in, clean, reuse) }()

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
