package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	extism "github.com/extism/go-sdk"

	"github.com/12fa/12fa/abi"
)

// hostFunc is the shape of every 12fa host function. It returns the value
// for the guest (a status or an offset), or an error when the guest broke
// the ABI; the adapter turns such an error into a failed step.
type hostFunc func(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error)

var (
	i32 = extism.ValueTypeI32
	i64 = extism.ValueTypeI64
)

// hostFunctions is the one table of 12fa's host functions.
func (h *Host) hostFunctions() []extism.HostFunction {
	table := []struct {
		name    string
		fn      hostFunc
		params  []extism.ValueType
		results []extism.ValueType
	}{
		{abi.FuncCtxGet, ctxGet, []extism.ValueType{i64}, []extism.ValueType{i64}},
		{abi.FuncCtxSet, ctxSet, []extism.ValueType{i64, i64}, []extism.ValueType{i32}},
		{abi.FuncLog, logFn, []extism.ValueType{i32, i64}, []extism.ValueType{i32}},
		{abi.FuncInputRequest, inputRequest, []extism.ValueType{i64}, []extism.ValueType{i64}},
		{abi.FuncNotify, notifyFn, []extism.ValueType{i64}, []extism.ValueType{i32}},
	}
	out := make([]extism.HostFunction, 0, len(table))
	for _, t := range table {
		f := extism.NewHostFunctionWithStack(t.name, h.adapt(t.name, t.fn), t.params, t.results)
		f.SetNamespace(abi.Namespace)
		out = append(out, f)
	}
	return out
}

// adapt is the single adapter between wazero's stack calling convention and
// a hostFunc. A broken call is recorded on the attempt and traps the guest;
// the host itself never panics past wazero, which recovers the trap into
// the call's error.
func (h *Host) adapt(name string, fn hostFunc) extism.HostFunctionStackCallback {
	return func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		a, _ := ctx.Value(attemptKey{}).(*attempt)
		if a == nil {
			panic(fmt.Errorf("%s called outside a 12fa call", name))
		}
		if err := ctx.Err(); err != nil {
			panic(err) // the attempt is over; wazero is closing the module
		}
		v, err := fn(ctx, p, a, stack)
		if err != nil {
			ce := callErr(ErrBadHostCall, "%s: %v", name, err)
			a.mu.Lock()
			if a.violation == nil {
				a.violation = ce
			}
			a.mu.Unlock()
			h.log.Debug("bad host function call", "func", name, "error", err)
			panic(ce)
		}
		stack[0] = v
	}
}

// readBlock reads the Extism memory block at off. Offsets are checked as
// 64-bit values before any 32-bit conversion. A block longer than limit is
// an error unless truncate is set, in which case its first limit bytes are
// returned.
func readBlock(ctx context.Context, p *extism.CurrentPlugin, off uint64, limit int, truncate bool) ([]byte, error) {
	if off == 0 {
		return nil, errors.New("null offset")
	}
	if off > math.MaxUint32 {
		return nil, fmt.Errorf("offset %#x is outside 32-bit memory", off)
	}
	n, err := p.LengthWithContext(ctx, off)
	if err != nil {
		return nil, fmt.Errorf("length of block at %#x: %s", off, firstLine(err.Error()))
	}
	if n == 0 {
		return nil, fmt.Errorf("offset %#x is not an allocated block", off)
	}
	if n > uint64(limit) {
		if !truncate {
			return nil, fmt.Errorf("block at %#x is %d bytes, the limit is %d", off, n, limit)
		}
		n = uint64(limit)
	}
	mem := p.Memory()
	if off+n > uint64(mem.Size()) {
		return nil, fmt.Errorf("block at %#x of %d bytes is outside memory", off, n)
	}
	b, ok := mem.Read(uint32(off), uint32(n))
	if !ok {
		return nil, fmt.Errorf("block at %#x of %d bytes is outside memory", off, n)
	}
	return bytes.Clone(b), nil
}

func readKey(ctx context.Context, p *extism.CurrentPlugin, off uint64) (string, error) {
	b, err := readBlock(ctx, p, off, abi.MaxKeyBytes, false)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("key is not UTF-8")
	}
	return string(b), nil
}

func ctxGet(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error) {
	key, err := readKey(ctx, p, stack[0])
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
	off, err := p.WriteBytes(v)
	if err != nil {
		return 0, fmt.Errorf("write value: %s", firstLine(err.Error()))
	}
	return off, nil
}

func ctxSet(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error) {
	key, err := readKey(ctx, p, stack[0])
	if err != nil {
		return 0, err
	}
	raw, err := readBlock(ctx, p, stack[1], abi.MaxValueBytes, false)
	if err != nil {
		return 0, fmt.Errorf("value of %q: %w", key, err)
	}
	var v bytes.Buffer
	if err := json.Compact(&v, raw); err != nil {
		return 0, fmt.Errorf("value of %q is not JSON: %v", key, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.writeBytes+v.Len() > abi.MaxContextBytes {
		return uint64(abi.StatusLimited), nil
	}
	a.writes[key] = v.Bytes()
	a.writeBytes += len(key) + v.Len()
	return uint64(abi.StatusOK), nil
}

func logFn(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error) {
	level := abi.LogLevel(int32(uint32(stack[0])))
	if !level.Valid() {
		return 0, fmt.Errorf("level %d is not a log level", int32(uint32(stack[0])))
	}
	msg, err := readBlock(ctx, p, stack[1], abi.MaxLogLineBytes, true)
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

func inputRequest(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error) {
	raw, err := readBlock(ctx, p, stack[0], abi.MaxQuestionBytes, false)
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	var req abi.InputRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, fmt.Errorf("request is not an input request document: %v", err)
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
	b, err := json.Marshal(resp)
	if err != nil {
		return 0, err
	}
	off, err := p.WriteBytes(b)
	if err != nil {
		return 0, fmt.Errorf("write response: %s", firstLine(err.Error()))
	}
	return off, nil
}

func notifyFn(ctx context.Context, p *extism.CurrentPlugin, a *attempt, stack []uint64) (uint64, error) {
	raw, err := readBlock(ctx, p, stack[0], abi.MaxNotificationBytes, false)
	if err != nil {
		return 0, fmt.Errorf("notification: %w", err)
	}
	var n abi.Notification
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return 0, fmt.Errorf("notification is not a notification document: %v", err)
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
