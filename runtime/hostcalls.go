package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/command"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/state"
)

// CallInfo says what a host call was, for a host_call event.
type CallInfo struct {
	Seq    int
	Kind   string // "http" or "exec"
	Method string
	// Origin is scheme://host:port; never the path or query.
	Origin string
	// Status is the HTTP status, or a command's exit code.
	Status int
	// Code is why the call got no result (an abi.HostError's).
	Code abi.Cause
	// Replayed: the result is an earlier attempt's, recorded; nothing was
	// sent.
	Replayed bool
}

// String says what the call was and got, in one line.
func (c *CallInfo) String() string {
	s := c.what() + ": "
	switch {
	case c.Code != "":
		s += string(c.Code)
	case c.Kind == "exec":
		s += fmt.Sprintf("exit %d", c.Status)
	default:
		s += fmt.Sprint(c.Status)
	}
	if c.Replayed {
		s += " (replayed: recorded by an earlier attempt, not sent)"
	}
	return s
}

// callJournal is the HTTP and the commands of one attempt. While the
// attempt makes the calls an earlier attempt of the step recorded (the same
// sequence, the same requests), it returns their recorded results and makes
// none; from the first call that differs, it makes them live. A call whose
// effect must not happen twice (see must) gets its start and its result
// made durable before it is made and before the step sees it, so that a
// crash in between is known and it is never made again by itself; the
// others' records are kept back (see kept).
type callJournal struct {
	x        *execution
	i        int
	attempt  int
	live     host.HTTPDoer
	exec     *command.Policy
	recorded map[int]state.HostCall // by Seq
	last     int                    // the highest Seq recorded, -1 if none

	mu       sync.Mutex
	seq      int
	diverged bool
	// kept are the records of calls whose loss costs nothing but sending
	// them again (safe methods, an idempotent step's): they are written
	// only if the attempt ends waiting for a person (keep), when they
	// let the step's next run replay them.
	kept []keptCall
}

// keptCall is a live call whose record is kept back: encoded only if the
// attempt ends waiting (most never are).
type keptCall struct {
	call   state.HostCall
	result any
}

// calls returns the journal of step i's attempt, over its live HTTP and
// commands.
func (x *execution) calls(i, attempt int, live host.HTTPDoer, exec *command.Policy) *callJournal {
	j := &callJournal{x: x, i: i, attempt: attempt, live: live, exec: exec, last: -1}
	if run, err := x.rt.store.Run(x.runID); err == nil && len(run.Steps[i].Calls) > 0 {
		j.recorded = make(map[int]state.HostCall, len(run.Steps[i].Calls))
		for _, c := range run.Steps[i].Calls {
			j.recorded[c.Seq] = c
			j.last = max(j.last, c.Seq)
		}
	}
	return j
}

// keep writes the records of the attempt's calls that were kept back, so
// that the step's next run (after the answer to a question) replays them.
func (j *callJournal) keep(ctx context.Context) {
	j.mu.Lock()
	kept := j.kept
	j.kept = nil
	j.mu.Unlock()
	if len(kept) == 0 {
		return
	}
	recs := make([]*state.Record, 0, len(kept))
	for _, k := range kept {
		rec, err := j.record(k.call, k.result)
		if err != nil {
			j.x.rt.log.Warn("host call not recorded; the step's next run makes it again", "seq", k.call.Seq, "error", err)
			continue
		}
		recs = append(recs, rec)
	}
	if err := j.x.rt.commitLazy(context.WithoutCancel(ctx), recs); err != nil {
		j.x.rt.log.Warn("host calls not recorded; the step's next run sends them again", "error", err)
	}
}

// safeMethod reports whether a request with method has no effect that
// matters if it is sent twice.
func safeMethod(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// keyHash builds a call's key: a sha256 of length-prefixed fields, so that
// no two different requests hash alike.
type keyHash struct{ h hash.Hash }

func newKeyHash(kind string) keyHash {
	k := keyHash{sha256.New()}
	k.field(kind)
	return k
}

func (k keyHash) field(s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	k.h.Write(n[:])
	io.WriteString(k.h, s)
}

func (k keyHash) count(n int) { k.field(strconv.Itoa(n)) }

func (k keyHash) sum() string { return hex.EncodeToString(k.h.Sum(nil)) }

// callKey is the hash a recorded call is matched by: the method, the URL,
// the headers (names in lower case, sorted; the values of names that
// differ only in case in the order of the names as given, sorted) and the
// body, as the step made them.
func callKey(method string, req *abi.HTTPRequest) string {
	k := newKeyHash("http")
	k.field(method)
	k.field(req.URL)
	var names []string
	lower := make(map[string][]string, len(req.Headers))
	for _, name := range slices.Sorted(maps.Keys(req.Headers)) {
		n := strings.ToLower(name)
		if _, dup := lower[n]; !dup {
			names = append(names, n)
		}
		lower[n] = append(lower[n], req.Headers[name]...)
	}
	slices.Sort(names)
	k.count(len(names))
	for _, n := range names {
		k.field(n)
		k.count(len(lower[n]))
		for _, v := range lower[n] {
			k.field(v)
		}
	}
	body, err := req.BodyBytes()
	if err != nil {
		body = []byte(req.Body + "\x00" + req.BodyBase64)
	}
	k.field(string(body))
	return k.sum()
}

// originOf is raw's scheme://host[:port], cut out without parsing it whole
// (egress parses and checks it).
func originOf(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:] // never userinfo in a record
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(rest)
}

func callFailed(code abi.Cause, format string, args ...any) abi.HTTPResponse {
	return abi.HTTPResponse{Error: &abi.HostError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// must reports whether a call's effect must not happen twice: an HTTP
// method other than GET, HEAD or OPTIONS, or a command not marked
// idempotent, in a step that is not idempotent.
func (j *callJournal) must(call state.HostCall) bool {
	if j.x.steps[j.i].step.Idempotent {
		return false
	}
	if call.Kind == "exec" {
		cmd, ok := j.exec.Lookup(call.Method)
		return !ok || !cmd.Idempotent
	}
	return !safeMethod(call.Method)
}

// what names a call in messages: "POST https://api.x.com", "git".
func (c *CallInfo) what() string { return strings.TrimSpace(c.Method + " " + c.Origin) }

// start decides a call against what the step's earlier attempts
// recorded: the record whose result is to be replayed, or why the call
// must not go on, or neither (it goes live, its start journaled first
// when its effect must not happen twice).
func (j *callJournal) start(ctx context.Context, call *state.HostCall) (*state.HostCall, *abi.HostError) {
	what := (&CallInfo{Method: call.Method, Origin: call.Origin}).what()
	if !j.diverged {
		if rec, ok := j.recorded[call.Seq]; !ok {
			// Not recorded: past the last record, live from here on; a safe
			// call whose record was not kept (a crash) is made again, and
			// the calls after it still replay.
			j.diverged = call.Seq > j.last
		} else {
			if rec.Key == call.Key {
				if rec.Result == nil {
					return nil, &abi.HostError{Code: abi.CauseHTTPOutcomeUnknown, Message: fmt.Sprintf(
						"%s was started by an earlier attempt, which stopped before its result was recorded: it may or may not have taken effect, and is not made again by itself (check, then resume to run the step again, which makes it again)", what)}
				}
				return &rec, nil
			}
			j.diverged = true
			if j.must(rec) {
				was := (&CallInfo{Method: rec.Method, Origin: rec.Origin}).what()
				return nil, &abi.HostError{Code: abi.CauseReplayDiverged, Message: fmt.Sprintf(
					"call %d is now %s, but an earlier attempt made %s there, whose effect must not happen twice; the step is not idempotent, so it stops here (make the step's calls depend only on its input and answers, or mark it idempotent; resume runs it again live)",
					call.Seq+1, what, was)}
			}
		}
	}
	if j.must(*call) {
		s := j.x.steps[j.i].step
		started := &state.Record{Type: state.EventHostCallStarted, Run: j.x.runID, Step: s.ID, Attempt: j.attempt, Call: call}
		if err := j.x.rt.commit(context.WithoutCancel(ctx), []*state.Record{started}); err != nil {
			return nil, &abi.HostError{Code: abi.CauseUnknown, Message: fmt.Sprintf("the journal cannot record %s, so it was not made: %v", what, err)}
		}
	}
	return nil, nil
}

// finish journals a live call's result: before the step sees it when its
// effect must not happen twice, else kept back (see kept).
func (j *callJournal) finish(ctx context.Context, call state.HostCall, result any) {
	if !j.must(call) {
		j.kept = append(j.kept, keptCall{call, result})
		return
	}
	rec, err := j.record(call, result)
	if err == nil {
		err = j.x.rt.commit(context.WithoutCancel(ctx), []*state.Record{rec})
	}
	if err != nil {
		j.x.rt.log.Warn("host call not recorded; a re-run makes it again", "step", j.x.steps[j.i].step.ID, "seq", call.Seq, "error", err)
	}
}

// record makes the journal record of a call and its result (an
// abi.HTTPResponse, whose large body goes to a blob, or an
// abi.ExecResponse).
func (j *callJournal) record(call state.HostCall, result any) (*state.Record, error) {
	if resp, ok := result.(abi.HTTPResponse); ok {
		if len(resp.Body) > state.MaxInlineBytes {
			sha, err := j.x.rt.store.PutBlob([]byte(resp.Body))
			if err != nil {
				return nil, err
			}
			call.Blob, resp.Body = sha, ""
		}
		result = resp.Wire()
	}
	b, err := jsonenc.Marshal(result)
	if err != nil {
		return nil, err
	}
	call.Result = b
	return &state.Record{Type: state.EventHostCall, Run: j.x.runID, Step: j.x.steps[j.i].step.ID, Attempt: j.attempt, Call: &call}, nil
}

func (j *callJournal) next(kind, method, origin, key string) state.HostCall {
	seq := j.seq
	j.seq++
	return state.HostCall{Seq: seq, Kind: kind, Key: key, Method: method, Origin: origin}
}

func (j *callJournal) Do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.x.steps[j.i].step
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = "GET"
	}
	call := j.next("http", method, originOf(req.URL), callKey(method, &req))
	rec, herr := j.start(ctx, &call)
	switch {
	case herr != nil:
		return j.toldHTTP(call, abi.HTTPResponse{Error: herr}, false)
	case rec != nil:
		resp, err := j.replayHTTP(*rec)
		if err != nil {
			return j.toldHTTP(call, callFailed(abi.CauseUnknown, "the recorded response of %s %s cannot be read: %v", method, call.Origin, err), false)
		}
		return j.toldHTTP(call, resp, true)
	}
	if s.Allow.HTTP != nil && s.Allow.HTTP.IdempotencyKey && !hasHeader(req.Headers, "Idempotency-Key") {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", j.x.runID, s.ID, call.Seq))
		if req.Headers = maps.Clone(req.Headers); req.Headers == nil {
			req.Headers = map[string][]string{}
		}
		req.Headers["Idempotency-Key"] = []string{hex.EncodeToString(sum[:16])}
	}
	resp := j.live.Do(ctx, req)
	j.finish(ctx, call, resp)
	return j.toldHTTP(call, resp, false)
}

// Exec runs a command through the journal, as Do sends a request.
func (j *callJournal) Exec(ctx context.Context, req abi.ExecRequest) abi.ExecResponse {
	j.mu.Lock()
	defer j.mu.Unlock()
	call := j.next("exec", req.Command, "", execKey(&req))
	rec, herr := j.start(ctx, &call)
	switch {
	case herr != nil:
		return j.toldExec(call, abi.ExecResponse{ExitCode: -1, Error: herr}, false)
	case rec != nil:
		var resp abi.ExecResponse
		if err := json.Unmarshal(rec.Result, &resp); err != nil {
			return j.toldExec(call, abi.ExecResponse{ExitCode: -1, Error: &abi.HostError{Code: abi.CauseUnknown, Message: "the recorded result cannot be read: " + err.Error()}}, false)
		}
		return j.toldExec(call, resp, true)
	}
	resp := j.exec.Exec(ctx, req).Wire()
	j.finish(ctx, call, resp)
	return j.toldExec(call, resp, false)
}

// execKey hashes a command request as the step made it.
func execKey(req *abi.ExecRequest) string {
	k := newKeyHash("exec")
	k.field(req.Command)
	k.count(len(req.Args))
	for _, a := range req.Args {
		k.field(a)
	}
	k.field(req.Cwd)
	k.count(len(req.Env))
	for _, name := range slices.Sorted(maps.Keys(req.Env)) {
		k.field(name)
		k.field(req.Env[name])
	}
	k.field(req.Stdin)
	k.field(req.Timeout)
	return k.sum()
}

func hasHeader(h map[string][]string, name string) bool {
	for n := range h {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// replayHTTP returns a recorded response as the live call returned it.
func (j *callJournal) replayHTTP(rec state.HostCall) (abi.HTTPResponse, error) {
	var resp abi.HTTPResponse
	if err := json.Unmarshal(rec.Result, &resp); err != nil {
		return resp, err
	}
	if resp.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(resp.BodyBase64)
		if err != nil {
			return resp, err
		}
		resp.Body, resp.BodyBase64 = string(b), ""
	}
	if rec.Blob != "" {
		b, err := j.x.rt.store.Blob(rec.Blob)
		if err != nil {
			return resp, err
		}
		resp.Body = string(b)
	}
	return resp, nil
}

// told emits a call's event.
func (j *callJournal) told(call state.HostCall, info *CallInfo, replayed bool) {
	info.Seq, info.Kind, info.Method, info.Origin, info.Replayed = call.Seq, call.Kind, call.Method, call.Origin, replayed
	s := j.x.steps[j.i].step
	j.x.rt.emit(Event{Type: EventHostCall, Run: j.x.runID, Step: s.ID, Index: j.i, Attempt: j.attempt, Call: info})
}

func (j *callJournal) toldHTTP(call state.HostCall, resp abi.HTTPResponse, replayed bool) abi.HTTPResponse {
	info := &CallInfo{Status: resp.Status}
	if resp.Error != nil {
		info.Code = resp.Error.Code
	}
	j.told(call, info, replayed)
	return resp
}

func (j *callJournal) toldExec(call state.HostCall, resp abi.ExecResponse, replayed bool) abi.ExecResponse {
	info := &CallInfo{Status: resp.ExitCode}
	if resp.Error != nil {
		info.Code = resp.Error.Code
	}
	j.told(call, info, replayed)
	return resp
}
