package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsonenc"
	"github.com/12fa/12fa/state"
)

// CallInfo says what a host call was, for a host_call event.
type CallInfo struct {
	Seq    int
	Kind   string // "http"
	Method string
	// Origin is scheme://host:port; never the path or query.
	Origin string
	Status int
	// Code is why the call got no result (an abi.HTTPError's).
	Code abi.Cause
	// Replayed: the result is an earlier attempt's, recorded; nothing was
	// sent.
	Replayed bool
}

// String says what the call was and got, in one line.
func (c *CallInfo) String() string {
	s := fmt.Sprintf("%s %s: ", c.Method, c.Origin)
	if c.Code != "" {
		s += string(c.Code)
	} else {
		s += fmt.Sprint(c.Status)
	}
	if c.Replayed {
		s += " (replayed: recorded by an earlier attempt, not sent)"
	}
	return s
}

// callJournal is the HTTP of one attempt. While the attempt makes the calls
// an earlier attempt of the step recorded (the same sequence, the same
// requests), it returns their recorded results and sends nothing; from the
// first call that differs, it sends live and records each result before
// the step sees it. A call whose effect must not happen twice (a method
// other than GET, HEAD or OPTIONS, in a step that is not idempotent) gets
// its start recorded before it is sent, so that a crash in between is
// known: it is never sent again by itself.
type callJournal struct {
	x        *execution
	i        int
	attempt  int
	live     host.HTTPDoer
	recorded map[int]state.HostCall // by Seq
	last     int                    // the highest Seq recorded, -1 if none

	mu       sync.Mutex
	seq      int
	diverged bool
	// kept are the records of calls whose loss costs nothing but sending
	// them again (safe methods, an idempotent step's): they are written
	// only if the attempt ends waiting for a person (keep), when they
	// let the step's next run replay them.
	kept []*state.Record
}

// calls returns the HTTPDoer of step i's attempt, over live.
func (x *execution) calls(i, attempt int, live host.HTTPDoer) *callJournal {
	j := &callJournal{x: x, i: i, attempt: attempt, live: live, last: -1}
	if run, ok := x.rt.store.Run(x.runID); ok && len(run.Steps[i].Calls) > 0 {
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
	recs := j.kept
	j.kept = nil
	j.mu.Unlock()
	if len(recs) == 0 {
		return
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

// callKey is the hash a recorded call is matched by: the method, the URL,
// the headers (names in lower case, sorted) and the body, as the step made
// them.
func callKey(method string, req *abi.HTTPRequest) string {
	h := sha256.New()
	field := func(s string) { // length-prefixed, so that no two requests hash alike
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	field("http")
	field(method)
	field(req.URL)
	names := make([]string, 0, len(req.Headers))
	lower := make(map[string][]string, len(req.Headers))
	for name, v := range req.Headers {
		n := strings.ToLower(name)
		if _, dup := lower[n]; !dup {
			names = append(names, n)
		}
		lower[n] = append(lower[n], v...)
	}
	slices.Sort(names)
	field(strconv.Itoa(len(names)))
	for _, n := range names {
		field(n)
		field(strconv.Itoa(len(lower[n])))
		for _, v := range lower[n] {
			field(v)
		}
	}
	body, err := req.BodyBytes()
	if err != nil {
		body = []byte(req.Body + "\x00" + req.BodyBase64)
	}
	field(string(body))
	return hex.EncodeToString(h.Sum(nil))
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

func callFailed(code abi.Cause, format string, args ...any) abi.HTTPResponse {
	return abi.HTTPResponse{Error: &abi.HTTPError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func (j *callJournal) Do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.x.steps[j.i].step
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = "GET"
	}
	seq := j.seq
	j.seq++
	call := state.HostCall{Seq: seq, Kind: "http", Key: callKey(method, &req), Method: method, Origin: originOf(req.URL)}
	if !j.diverged {
		if rec, ok := j.recorded[seq]; !ok {
			// Not recorded: past the last record, live from here on; a safe
			// call whose record was not kept (a crash) is sent again, and
			// the calls after it still replay.
			j.diverged = seq > j.last
		} else {
			if rec.Key == call.Key {
				if rec.Result == nil {
					return j.told(call, callFailed(abi.CauseHTTPOutcomeUnknown,
						"%s %s was sent by an earlier attempt, which stopped before its response was recorded: it may or may not have taken effect, and is not sent again by itself (check, then resume to run the step again, which sends it again)",
						method, call.Origin), false)
				}
				resp, err := j.replay(rec)
				if err != nil {
					return j.told(call, callFailed(abi.CauseUnknown, "the recorded response of %s %s cannot be read: %v", method, call.Origin, err), false)
				}
				return j.told(call, resp, true)
			}
			j.diverged = true
			if !safeMethod(rec.Method) && !s.Idempotent {
				return j.told(call, callFailed(abi.CauseReplayDiverged,
					"call %d is now %s %s, but an earlier attempt made %s %s there, whose effect must not happen twice; the step is not idempotent, so it stops here (make the step's calls depend only on its input and answers, or mark it idempotent; resume runs it again live)",
					seq+1, method, call.Origin, rec.Method, rec.Origin), false)
			}
		}
	}
	if !safeMethod(method) && !s.Idempotent {
		started := &state.Record{Type: state.EventHostCallStarted, Run: j.x.runID, Step: s.ID, Attempt: j.attempt, Call: &call}
		if err := j.x.rt.commit(context.WithoutCancel(ctx), []*state.Record{started}); err != nil {
			return callFailed(abi.CauseUnknown, "the journal cannot record %s %s, so it was not sent: %v", method, call.Origin, err)
		}
	}
	if s.Allow.HTTP != nil && s.Allow.HTTP.IdempotencyKey && !hasHeader(req.Headers, "Idempotency-Key") {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", j.x.runID, s.ID, seq))
		if req.Headers = maps.Clone(req.Headers); req.Headers == nil {
			req.Headers = map[string][]string{}
		}
		req.Headers["Idempotency-Key"] = []string{hex.EncodeToString(sum[:16])}
	}
	resp := j.live.Do(ctx, req)
	if err := j.record(ctx, call, resp); err != nil {
		j.x.rt.log.Warn("host call not recorded; a re-run sends it again", "step", s.ID, "seq", seq, "error", err)
	}
	return j.told(call, resp, false)
}

func hasHeader(h map[string][]string, name string) bool {
	for n := range h {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// record journals a live call's result, its body in a blob when large.
func (j *callJournal) record(ctx context.Context, call state.HostCall, resp abi.HTTPResponse) error {
	if len(resp.Body) > state.MaxInlineBytes {
		sha, err := j.x.rt.store.PutBlob([]byte(resp.Body))
		if err != nil {
			return err
		}
		call.Blob, resp.Body = sha, ""
	}
	b, err := jsonenc.Marshal(resp.Wire())
	if err != nil {
		return err
	}
	call.Result = b
	s := j.x.steps[j.i].step
	rec := &state.Record{Type: state.EventHostCall, Run: j.x.runID, Step: s.ID, Attempt: j.attempt, Call: &call}
	// Only a result whose loss would send an effect twice is made durable
	// before the step sees it; another is kept back (see kept).
	if safeMethod(call.Method) || s.Idempotent {
		j.kept = append(j.kept, rec)
		return nil
	}
	return j.x.rt.commit(context.WithoutCancel(ctx), []*state.Record{rec})
}

// replay returns a recorded result as the live call returned it.
func (j *callJournal) replay(rec state.HostCall) (abi.HTTPResponse, error) {
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

// told emits the call's event and returns resp.
func (j *callJournal) told(call state.HostCall, resp abi.HTTPResponse, replayed bool) abi.HTTPResponse {
	info := &CallInfo{Seq: call.Seq, Kind: call.Kind, Method: call.Method, Origin: call.Origin, Status: resp.Status, Replayed: replayed}
	if resp.Error != nil {
		info.Code = resp.Error.Code
	}
	s := j.x.steps[j.i].step
	j.x.rt.emit(Event{Type: EventHostCall, Run: j.x.runID, Step: s.ID, Index: j.i, Attempt: j.attempt, Call: info})
	return resp
}
