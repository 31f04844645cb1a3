package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/internal/jsonenc"
)

// noHTTP answers the requests of a call that has no HTTP grant.
func noHTTP(req abi.HTTPRequest) abi.HTTPResponse {
	return abi.HTTPResponse{Error: &abi.HostError{Code: abi.CauseHTTPDenied,
		Message: "the step has no allow.hosts grant: it may send no HTTP request"}}
}

// sendHTTP sends req through the attempt's HTTPDoer.
func sendHTTP(ctx context.Context, a *attempt, req abi.HTTPRequest) abi.HTTPResponse {
	if a == nil || a.req.HTTP == nil {
		return noHTTP(req)
	}
	return a.req.HTTP.Do(ctx, req)
}

// httpFn is 12fa's http: a request document in, a response document out.
// Only a request that is no document breaks the ABI; a refusal or a
// failure is in the response.
func httpFn(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	var req abi.HTTPRequest
	if err := readDoc(k, stack[0], abi.MaxHTTPRequestBytes, "request", "an HTTP request", &req); err != nil {
		return 0, err
	}
	if req.URL == "" {
		return 0, fmt.Errorf("request has no url")
	}
	return writeDoc(k, sendHTTP(ctx, a, req).Wire())
}

// extismHTTPRequest is the request document of Extism's http_request.
type extismHTTPRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// extismHTTP is Extism's http_request(req, body) -> body: a request
// document and an optional body block (both owned, and freed, by the host)
// in, the response body's block out (0 when empty). Extism's status and
// headers calls read the rest. As in Extism, a request that gets no
// response traps the guest; here the trap carries the HTTP cause, so that
// retries and status name it.
func extismHTTP(ctx context.Context, s *callState, st []uint64) error {
	raw, err := s.k.block(st[0])
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if len(raw) > abi.MaxHTTPRequestBytes {
		return fmt.Errorf("request is %d bytes, the limit is %d", len(raw), abi.MaxHTTPRequestBytes)
	}
	var er extismHTTPRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&er); err != nil {
		return fmt.Errorf("request is not an Extism HTTP request document: %v", err)
	}
	req := abi.HTTPRequest{URL: er.URL, Method: er.Method}
	if len(er.Headers) > 0 {
		req.Headers = make(map[string][]string, len(er.Headers))
		for name, v := range er.Headers {
			req.Headers[name] = []string{v}
		}
	}
	if st[1] != 0 {
		body, err := s.k.block(st[1])
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
		if len(body) > abi.MaxHTTPRequestBytes {
			return fmt.Errorf("body is %d bytes, the limit is %d", len(body), abi.MaxHTTPRequestBytes)
		}
		req.Body = string(body) // raw bytes; the sender takes them as they are
		s.k.freeBlock(st[1])
	}
	s.k.freeBlock(st[0])
	resp := sendHTTP(ctx, s.a, req)
	if resp.Error != nil {
		return &CallError{Cause: &causeError{cause: resp.Error.Code, msg: string(resp.Error.Code)},
			Detail: "http_request: " + resp.Error.Message}
	}
	if s.a != nil {
		s.a.mu.Lock()
		s.a.httpStatus, s.a.httpHeaders = resp.Status, resp.Headers
		s.a.mu.Unlock()
	}
	st[0] = 0
	if resp.Body != "" {
		off, err := s.k.write([]byte(resp.Body))
		if err != nil {
			return fmt.Errorf("write response body: %w", err)
		}
		st[0] = off
	}
	return nil
}

// extismHTTPHeaders is Extism's http_headers: the last response's headers
// as a JSON object of lower-case names, several values joined by "," (as
// Extism's Go SDK does), or 0 before any response.
func extismHTTPHeaders(_ context.Context, s *callState, st []uint64) error {
	st[0] = 0
	if s.a == nil {
		return nil
	}
	s.a.mu.Lock()
	h := s.a.httpHeaders
	s.a.mu.Unlock()
	if h == nil {
		return nil
	}
	flat := make(map[string]string, len(h))
	for name, values := range h {
		flat[strings.ToLower(name)] = strings.Join(values, ",")
	}
	b, err := jsonenc.Marshal(flat)
	if err != nil {
		return err
	}
	off, err := s.k.write(b)
	if err != nil {
		return fmt.Errorf("write headers: %w", err)
	}
	st[0] = off
	return nil
}

// extismHTTPStatus is Extism's http_status_code: the last response's
// status, 0 before any.
func extismHTTPStatus(_ context.Context, s *callState, st []uint64) error {
	st[0] = 0
	if s.a != nil {
		s.a.mu.Lock()
		st[0] = uint64(uint32(s.a.httpStatus))
		s.a.mu.Unlock()
	}
	return nil
}

// execFn is 12fa's exec: a request document in, a response document out.
// Only a request that is no document breaks the ABI.
func execFn(ctx context.Context, k *kernel, a *attempt, stack []uint64) (uint64, error) {
	var req abi.ExecRequest
	if err := readDoc(k, stack[0], abi.MaxExecRequestBytes, "request", "an exec request", &req); err != nil {
		return 0, err
	}
	if req.Command == "" {
		return 0, fmt.Errorf("request has no command")
	}
	var resp abi.ExecResponse
	if a == nil || a.req.Exec == nil {
		resp = abi.ExecResponse{ExitCode: -1, Error: &abi.HostError{Code: abi.CauseExecDenied,
			Message: "the step has no allow.commands grant: it may run no command"}}
	} else {
		resp = a.req.Exec.Exec(ctx, req)
	}
	return writeDoc(k, resp.Wire())
}
