package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/jsonenc"
)

// hostFunc is the shape of every 12fa host function. It returns the value
// for the guest (a status or an offset), or an error when the guest broke
// the ABI; the adapter turns such an error into a failed step.
type hostFunc func(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error)

// hostFunctions is the one table of 12fa's host functions.
var hostFunctions = []struct {
	name            string
	fn              hostFunc
	params, results []api.ValueType
}{
	{abi.FuncCtxGet, ctxGet, []api.ValueType{i64}, []api.ValueType{i64}},
	{abi.FuncCtxSet, ctxSet, []api.ValueType{i64, i64}, []api.ValueType{i32}},
	{abi.FuncLog, logFn, []api.ValueType{i32, i64}, []api.ValueType{i32}},
	{abi.FuncInputRequest, inputRequest, []api.ValueType{i64}, []api.ValueType{i64}},
	{abi.FuncNotify, notifyFn, []api.ValueType{i64}, []api.ValueType{i32}},
	{abi.FuncHTTP, httpFn, []api.ValueType{i64}, []api.ValueType{i64}},
	{abi.FuncExec, execFn, []api.ValueType{i64}, []api.ValueType{i64}},
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// isHostFunction reports whether abi v1 defines name.
func isHostFunction(name string) bool {
	for _, f := range hostFunctions {
		if f.name == name {
			return true
		}
	}
	return false
}

// instantiateHostFunctions instantiates the 12fa namespace in rt. Each
// function goes through one adapter between wazero's stack calling
// convention and a hostFunc: a broken call is recorded on the attempt and
// traps the guest; the host itself never panics past wazero, which recovers
// the trap into the call's error.
func (h *Host) instantiateHostFunctions(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.Namespace)
	for _, f := range hostFunctions {
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
			s := stateOf(ctx)
			if s == nil || s.a == nil {
				panic(fmt.Errorf("%s called outside a step's call", f.name))
			}
			if err := ctx.Err(); err != nil {
				panic(err) // the attempt is over; wazero is closing the module
			}
			v, err := f.fn(ctx, s.k, s.a, stack)
			if err != nil {
				h.violation(s.a, f.name, err)
			}
			stack[0] = v
		}), f.params, f.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// violation records a broken host function call on the attempt (when there
// is one) and traps the guest. An err that is a *CallError already (a
// refused Extism HTTP request, say) keeps its cause; any other is a bad
// host call.
func (h *Host) violation(a *attempt, name string, err error) {
	ce, ok := errors.AsType[*CallError](err)
	if !ok {
		ce = callErr(ErrBadHostCall, "%s: %v", name, err)
	}
	if a != nil {
		a.mu.Lock()
		if a.violation == nil {
			a.violation = ce
		}
		a.mu.Unlock()
	}
	h.log.Debug("bad host function call", "func", name, "error", err)
	panic(ce)
}

// readBlock reads the Extism memory block at off. A block longer than
// limit is an error unless truncate is set, in which case its first limit
// bytes are returned.
func readBlock(k *kernel, off uint64, limit int, truncate bool) ([]byte, error) {
	b, err := k.block(off)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("offset %#x is an empty block", off)
	}
	if len(b) > limit {
		if !truncate {
			return nil, fmt.Errorf("block at %#x is %d bytes, the limit is %d", off, len(b), limit)
		}
		b = b[:limit]
	}
	return bytes.Clone(b), nil
}

// readDoc decodes the JSON document in the block at off into v, refusing
// fields v lacks; what names the argument and kind the document in errors
// ("request", "an input request").
func readDoc(k *kernel, off uint64, limit int, what, kind string, v any) error {
	raw, err := readBlock(k, off, limit, false)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s is not %s document: %v", what, kind, err)
	}
	return nil
}

// writeDoc encodes v into a new kernel block and returns its offset.
func writeDoc(k *kernel, v any) (uint64, error) {
	b, err := jsonenc.Marshal(v)
	if err != nil {
		return 0, err
	}
	off, err := k.write(b)
	if err != nil {
		return 0, fmt.Errorf("write response: %w", err)
	}
	return off, nil
}

func readKey(k *kernel, off uint64) (string, error) {
	b, err := readBlock(k, off, abi.MaxKeyBytes, false)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("key is not UTF-8")
	}
	return string(b), nil
}

func ctxGet(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	key, err := readKey(k, stack[0])
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	v, ok := a.writes[key]
	a.mu.Unlock()
	if !ok && a.req.Context != nil {
		v, ok = a.req.Context.Get(key)
	}
	if !ok || string(v) == "null" {
		return 0, nil
	}
	off, err := k.write(v)
	if err != nil {
		return 0, fmt.Errorf("write value: %w", err)
	}
	return off, nil
}

func ctxSet(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	key, err := readKey(k, stack[0])
	if err != nil {
		return 0, err
	}
	raw, err := readBlock(k, stack[1], abi.MaxValueBytes, false)
	if err != nil {
		return 0, fmt.Errorf("value of %q: %w", key, err)
	}
	var v bytes.Buffer
	if !utf8.Valid(raw) {
		return 0, fmt.Errorf("value of %q is not UTF-8", key)
	}
	if err := json.Compact(&v, raw); err != nil {
		return 0, fmt.Errorf("value of %q is not JSON: %v", key, err)
	}
	val := v.Bytes()
	a.mu.Lock()
	defer a.mu.Unlock()
	// Both the attempt's writes (what its journal record holds) and the
	// run's context after them must stay within MaxContextBytes, counted
	// as the journal writes them.
	cost := ContextEntryBytes(key, val)
	prev, written := a.writes[key]
	writes := a.writeBytes + cost
	if written {
		writes -= ContextEntryBytes(key, prev)
	} else if a.req.Context != nil {
		prev, written = a.req.Context.Get(key)
	}
	total := a.ctxBytes
	if written && string(prev) != "null" {
		total -= ContextEntryBytes(key, prev)
	}
	if string(val) != "null" {
		total += cost
	}
	if writes > abi.MaxContextBytes || (total > abi.MaxContextBytes && total > a.ctxBytes) {
		return uint64(abi.StatusLimited), nil
	}
	a.writes[key], a.writeBytes, a.ctxBytes = val, writes, total
	return uint64(abi.StatusOK), nil
}

// ContextEntryBytes is what the context entry key: value counts toward
// abi.MaxContextBytes: its bytes in a journal record (the key as a JSON
// string, a colon, the value, a comma).
func ContextEntryBytes(key string, value []byte) int {
	return len(jsonenc.String(key)) + len(value) + 2
}

func logFn(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	level := abi.LogLevel(int32(uint32(stack[0])))
	if !level.Valid() {
		return 0, fmt.Errorf("level %d is not a log level", int32(uint32(stack[0])))
	}
	msg, err := readBlock(k, stack[1], abi.MaxLogLineBytes, true)
	if err != nil {
		return 0, fmt.Errorf("message: %w", err)
	}
	line := LogLine{Time: time.Now(), Level: level, Source: "log",
		Message: strings.ToValidUTF8(string(msg), "\uFFFD")}
	if !a.addLog(line) {
		return uint64(abi.StatusLimited), nil
	}
	return uint64(abi.StatusOK), nil
}

func inputRequest(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	var req abi.InputRequest
	if err := readDoc(k, stack[0], abi.MaxQuestionBytes, "request", "an input request", &req); err != nil {
		return 0, err
	}
	if req.Key == "" || req.Question == "" || len(req.Key) > abi.MaxKeyBytes {
		return 0, errors.New("request needs a key (at most 256 bytes) and a question")
	}
	if a.req.Inputs == nil {
		return 0, errors.New("this call cannot ask questions")
	}
	a.mu.Lock()
	a.asked++
	over := a.asked > abi.MaxInputRequests
	a.mu.Unlock()
	if over {
		return 0, fmt.Errorf("more than %d questions in one attempt", abi.MaxInputRequests)
	}
	resp, err := a.req.Inputs.RequestInput(ctx, req)
	if errors.Is(err, ErrInputExpired) {
		ce := callErr(ErrInputExpired, "%v", err)
		a.mu.Lock()
		if a.violation == nil {
			a.violation = ce
		}
		a.mu.Unlock()
		panic(ce)
	}
	if err != nil {
		return 0, fmt.Errorf("record the question: %w", err)
	}
	if !resp.Answered {
		a.mu.Lock()
		a.pending = append(a.pending, resp.ID)
		a.mu.Unlock()
	}
	return writeDoc(k, resp)
}

func notifyFn(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	var n abi.Notification
	if err := readDoc(k, stack[0], abi.MaxNotificationBytes, "notification", "a notification", &n); err != nil {
		return 0, err
	}
	if n.Message == "" || n.Priority < 0 || n.Priority > 5 {
		return 0, errors.New("notification needs a message and a priority from 1 to 5 (or none)")
	}
	if a.req.Notifier == nil {
		return uint64(abi.StatusDenied), nil
	}
	a.mu.Lock()
	a.notified++
	over := a.notified > abi.MaxNotificationsPerAttempt
	a.mu.Unlock()
	if over {
		return uint64(abi.StatusLimited), nil
	}
	switch err := a.req.Notifier.Notify(ctx, n); {
	case errors.Is(err, ErrLimited):
		return uint64(abi.StatusLimited), nil
	case err != nil:
		return uint64(abi.StatusInternal), nil
	}
	return uint64(abi.StatusOK), nil
}
