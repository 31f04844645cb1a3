package abi

import (
	"encoding/base64"
	"errors"
	"unicode/utf8"
)

// FuncHTTP sends an HTTP request under the step's allow.hosts grant:
//
//	http(req i64) -> i64   offset of an HTTPResponse; req is an HTTPRequest
//
// A request the grants refuse, a network failure or a response over the
// limits comes back as an HTTPResponse whose Error says why; it never traps.
// Only a req that is no HTTPRequest document breaks the ABI.
const FuncHTTP = "http"

// HTTPRequest is the document a step passes to FuncHTTP. Header names are
// case-insensitive; each maps to its values in order.
type HTTPRequest struct {
	// Method defaults to GET.
	Method  string              `json:"method,omitempty"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	// Body is the request body as text; BodyBase64 is one given as base64
	// (for bytes that are not UTF-8). At most one is set.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
}

// BodyBytes returns the request body, decoding BodyBase64.
func (r *HTTPRequest) BodyBytes() ([]byte, error) {
	switch {
	case r.Body != "" && r.BodyBase64 != "":
		return nil, errors.New("body and body_base64 are both set")
	case r.BodyBase64 != "":
		b, err := base64.StdEncoding.DecodeString(r.BodyBase64)
		if err != nil {
			return nil, errors.New("body_base64 is not base64")
		}
		return b, nil
	}
	return []byte(r.Body), nil
}

// HTTPResponse is what FuncHTTP returns. Any status the server sent is a
// response, 4xx and 5xx included; Error is set only when no response
// could be had (and then Status is 0).
type HTTPResponse struct {
	Status int `json:"status,omitempty"`
	// Headers are the response's, names in lower case.
	Headers map[string][]string `json:"headers,omitempty"`
	// Body holds a UTF-8 body; BodyBase64 a body of other bytes.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
	// URL is where the response came from, after redirects.
	URL   string     `json:"url,omitempty"`
	Error *HostError `json:"error,omitempty"`
}

// Wire returns r ready to encode for a guest: a Body that is not UTF-8
// moves to BodyBase64.
func (r HTTPResponse) Wire() HTTPResponse {
	if r.Body != "" && !utf8.ValidString(r.Body) {
		r.BodyBase64, r.Body = base64.StdEncoding.EncodeToString([]byte(r.Body)), ""
	}
	return r
}

// HostError says why a host call (an HTTP request, a command) got no
// result. Code is one of the host-call causes (CauseHTTPDenied,
// CauseExecDenied …); a step that fails because of it should return it as
// its ErrorDoc's code, so that the runner knows whether to retry.
type HostError struct {
	Code    Cause  `json:"code"`
	Message string `json:"message"`
}

func (e *HostError) Error() string { return string(e.Code) + ": " + e.Message }

// Limits of HTTP, per step; a manifest's allow.http lowers or raises them
// up to the Max values.
const (
	DefaultHTTPMaxResponseBytes = 8 << 20
	MaxHTTPResponseBytes        = 32 << 20
	DefaultHTTPMaxHeaderBytes   = 64 << 10
	DefaultHTTPMaxRequests      = 64
	DefaultHTTPMaxRedirects     = 5
	MaxHTTPRedirects            = 20
	// MaxHTTPRequestBytes bounds an HTTPRequest document (and an Extism
	// request's body).
	MaxHTTPRequestBytes = 16 << 20
)
