package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/12fa/12fa/abi"
)

// Limits bound a step's HTTP. Zero fields take the defaults.
type Limits struct {
	// MaxResponseBytes bounds a response body as the step gets it
	// (decoded, when the host asked for compression).
	MaxResponseBytes int64
	// MaxHeaderBytes bounds a response's headers.
	MaxHeaderBytes int64
	// MaxRequests bounds the requests of one attempt; redirect hops count.
	MaxRequests int
	// MaxRedirects bounds the redirect hops of one request.
	MaxRedirects int
	// Timeout bounds one request, all its hops and its body included,
	// within the attempt's deadline.
	Timeout time.Duration
	// StallTimeout fails a request that gets no byte for this long:
	// connecting, waiting for headers or reading the body.
	StallTimeout time.Duration
}

// Default limits (the README's Limits table).
const (
	DefaultTimeout      = 30 * time.Second
	DefaultStallTimeout = 10 * time.Second
)

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxResponseBytes <= 0 {
		l.MaxResponseBytes = abi.DefaultHTTPMaxResponseBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = abi.DefaultHTTPMaxHeaderBytes
	}
	if l.MaxRequests <= 0 {
		l.MaxRequests = abi.DefaultHTTPMaxRequests
	}
	if l.MaxRedirects < 0 {
		l.MaxRedirects = 0
	} else if l.MaxRedirects == 0 {
		l.MaxRedirects = abi.DefaultHTTPMaxRedirects
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.StallTimeout <= 0 {
		l.StallTimeout = DefaultStallTimeout
	}
	return l
}

// Policy is what one step is granted.
type Policy struct {
	Origins []Origin
	// Private lists the non-public ranges the step may dial anyway.
	Private []netip.Prefix
	Limits  Limits
	// NoRedirects returns a redirect to the step instead of following it.
	NoRedirects bool
	// Secrets are the secrets the step is granted.
	Secrets []Secret

	// LookupNetIP resolves a host name; nil is net.DefaultResolver's. Tests
	// set it to play a hostile DNS server.
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// TLS, when set, is the TLS configuration (tests: a test server's CA).
	TLS *tls.Config
	// Dial, when set, dials an address that passed the checks instead of
	// the checking net.Dialer. Tests use it to reach a server on another
	// port than the URL's; nothing else should.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client sends the HTTP requests of one step, under its Policy. It keeps
// connections between requests and attempts; it is safe for concurrent use.
type Client struct {
	p          Policy
	transport  *http.Transport
	redactions []redaction
}

// NewClient returns a client for p. The host's proxy settings
// (HTTP_PROXY …) are never used: a proxy would be dialed instead of the
// host the grants name, and its address checked instead of the target's.
func NewClient(p Policy) *Client {
	p.Limits = p.Limits.WithDefaults()
	c := &Client{p: p, redactions: redactionsOf(p.Secrets)}
	c.transport = &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dial,
		TLSClientConfig:        p.TLS,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    p.Limits.StallTimeout,
		ResponseHeaderTimeout:  p.Limits.StallTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: p.Limits.MaxHeaderBytes,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
	}
	return c
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Session is one attempt's use of a client: it counts the attempt's
// requests against Limits.MaxRequests.
type Session struct {
	c    *Client
	sent atomic.Int64
}

// Session starts the HTTP of one attempt.
func (c *Client) Session() *Session { return &Session{c: c} }

// blockedError is a dial refused by checkAddr.
type blockedError struct{ err error }

func (e *blockedError) Error() string { return e.err.Error() }

// dial resolves addr's host, checks every address it would dial and dials
// the first that is allowed and answers. The dialer's Control checks the
// address once more as the socket is made, so that nothing between here and
// connect(2) can change what is dialed.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := c.p.LookupNetIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &blockedError{fmt.Errorf("cannot check address %q", address)}
		}
		if err := checkAddr(ap.Addr(), c.p.Private); err != nil {
			return &blockedError{err}
		}
		return nil
	}}
	literal := len(addrs) == 1 && addrs[0].String() == host
	var firstErr error
	for _, a := range addrs {
		if err := checkAddr(a, c.p.Private); err != nil {
			if firstErr == nil {
				if !literal {
					err = fmt.Errorf("%s: %w", host, err)
				}
				firstErr = &blockedError{err}
			}
			continue
		}
		dial := d.DialContext
		if c.p.Dial != nil {
			dial = c.p.Dial
		}
		conn, err := dial(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil || isBlocked(firstErr) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%s has no address", host)
	}
	return nil, firstErr
}

func isBlocked(err error) bool {
	var b *blockedError
	return errors.As(err, &b)
}

// errStalled is the cause of a request canceled for want of progress.
var errStalled = errors.New("stalled")

// stall cancels a request when no byte comes for a while.
type stall struct {
	t *time.Timer
	d time.Duration
}

func (s *stall) progress() { s.t.Reset(s.d) }

// stallReader reads a body, counting each read that brings bytes as
// progress.
type stallReader struct {
	r io.Reader
	s *stall
}

func (r stallReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.s.progress()
	}
	return n, err
}

// fail makes the response of a request that got none.
func fail(code abi.Cause, format string, args ...any) abi.HTTPResponse {
	return abi.HTTPResponse{Error: &abi.HostError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// isCredential reports whether a request header may carry a credential,
// which a redirect to another origin must not pass on. Go's own client
// drops only Authorization, Cookie and a few more, so an API key in
// X-Api-Key would follow a redirect anywhere; this drops every header
// whose name says it could hold one.
func isCredential(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "cookie", "key", "token", "secret", "session", "signature", "password", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Do sends req under the policy, following redirects itself (each hop is
// checked against the grants, and against the attempt's request count), and
// returns the response or why there is none. It never panics and never
// returns a Go error: everything a step needs to know is in the response,
// from which every granted secret's bytes are taken out.
func (s *Session) Do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse {
	resp := s.do(ctx, req)
	if rs := s.c.redactions; len(rs) > 0 {
		resp.Body = redact(resp.Body, rs)
		for _, values := range resp.Headers {
			for i, v := range values {
				values[i] = redact(v, rs)
			}
		}
		if resp.Error != nil {
			resp.Error.Message = redact(resp.Error.Message, rs)
		}
	}
	return resp
}

// secret returns the granted secret called name.
func (p *Policy) secret(name string) *Secret {
	for i := range p.Secrets {
		if p.Secrets[i].Name == name {
			return &p.Secrets[i]
		}
	}
	return nil
}

// headersFor returns the headers of a hop to u: the step's, with the
// secrets they name put in, and the host's secret headers for u. A
// placeholder for an origin its secret is not granted for refuses the
// request on the first hop, and drops its header on a redirect hop.
func (s *Session) headersFor(u *url.URL, header http.Header, hop int) (http.Header, *abi.HostError) {
	p := &s.c.p
	out := make(http.Header, len(header)+len(p.Secrets))
	for name, values := range header {
		var vs []string
		for _, v := range values {
			var bad *abi.HostError
			v = placeholder.ReplaceAllStringFunc(v, func(m string) string {
				sec := p.secret(placeholder.FindStringSubmatch(m)[1])
				switch {
				case bad != nil:
				case sec == nil:
					bad = &abi.HostError{Code: abi.CauseSecretNotGranted, Message: "a header names a secret the step is not granted"}
				case !sec.grantedFor(u):
					bad = &abi.HostError{Code: abi.CauseSecretNotGranted, Message: fmt.Sprintf("secret %q is not granted for %s", sec.Name, origin(u))}
				case sec.Value == "":
					bad = &abi.HostError{Code: abi.CauseSecretMissing, Message: fmt.Sprintf("secret %q has no value in the host's environment", sec.Name)}
				default:
					return sec.Value
				}
				return ""
			})
			if bad != nil {
				if hop > 0 && bad.Code == abi.CauseSecretNotGranted {
					vs = nil
					break
				}
				return nil, bad
			}
			vs = append(vs, v)
		}
		if vs != nil {
			out[name] = vs
		}
	}
	for i := range p.Secrets {
		sec := &p.Secrets[i]
		if sec.Header == "" || !sec.grantedFor(u) {
			continue
		}
		if sec.Value == "" {
			return nil, &abi.HostError{Code: abi.CauseSecretMissing, Message: fmt.Sprintf("secret %q has no value in the host's environment", sec.Name)}
		}
		out.Set(sec.Header, sec.value())
	}
	return out, nil
}

func (s *Session) do(ctx context.Context, req abi.HTTPRequest) abi.HTTPResponse {
	p := &s.c.p
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return fail(abi.CauseHTTPBadRequest, "bad URL: %v", unwrapURLError(err))
	}
	if u.User != nil {
		return fail(abi.CauseHTTPBadRequest, "URL %s carries userinfo; send credentials in a header", redactURL(u))
	}
	if _, _, _, ok := target(u); !ok {
		return fail(abi.CauseHTTPBadRequest, "URL %s is not an http or https URL with a host", redactURL(u))
	}
	body, err := req.BodyBytes()
	if err != nil {
		return fail(abi.CauseHTTPBadRequest, "%v", err)
	}
	// A secret goes only where the host puts it: in a header, to an origin
	// it is granted for. One named in the URL or the body would end up in
	// logs and error text, and is refused before anything is sent.
	if mentionsSecret(req.URL) {
		return fail(abi.CauseSecretNotGranted, "the URL names a secret; a secret goes only in a header")
	}
	if mentionsSecret(string(body)) {
		return fail(abi.CauseSecretNotGranted, "the body names a secret; a secret goes only in a header")
	}
	header := http.Header{}
	for name, values := range req.Headers {
		for _, v := range values {
			for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
				if p.secret(m[1]) == nil {
					return fail(abi.CauseSecretNotGranted, "header %s names secret %q, which the step is not granted", name, m[1])
				}
			}
			header.Add(name, v)
		}
	}
	// The request's own timeout, unless the attempt's deadline comes first.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > p.Limits.Timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Limits.Timeout)
		defer cancel()
	}
	ctx, cancelStall := context.WithCancelCause(ctx)
	defer cancelStall(nil)
	st := &stall{d: p.Limits.StallTimeout}
	st.t = time.AfterFunc(st.d, func() { cancelStall(errStalled) })
	defer st.t.Stop()

	for hop := 0; ; hop++ {
		allowed := false
		for _, o := range p.Origins {
			if o.Allows(method, u) {
				allowed = true
				break
			}
		}
		if !allowed {
			if hop == 0 {
				return fail(abi.CauseHTTPDenied, "%s %s is not granted by the step's allow.hosts", method, origin(u))
			}
			return fail(abi.CauseHTTPRedirectDenied, "redirect %d leads to %s %s, which the step's allow.hosts does not grant", hop, method, origin(u))
		}
		if n := s.sent.Add(1); n > int64(p.Limits.MaxRequests) {
			return fail(abi.CauseHTTPLimit, "more than %d HTTP requests in one attempt", p.Limits.MaxRequests)
		}
		hr, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return fail(abi.CauseHTTPBadRequest, "%v", unwrapURLError(err))
		}
		if len(body) == 0 {
			hr.Body, hr.ContentLength = http.NoBody, 0
		}
		h, herr := s.headersFor(u, header, hop)
		if herr != nil {
			return abi.HTTPResponse{Error: herr}
		}
		hr.Header = h
		st.progress()
		resp, err := s.c.transport.RoundTrip(hr)
		if err != nil {
			return s.transportFailure(ctx, u, err)
		}
		st.progress()
		loc := resp.Header.Get("Location")
		if p.NoRedirects || loc == "" || !isRedirect(resp.StatusCode) {
			return s.read(ctx, u, resp, st)
		}
		drain(resp.Body)
		if hop >= p.Limits.MaxRedirects {
			return fail(abi.CauseHTTPRedirectDenied, "more than %d redirects", p.Limits.MaxRedirects)
		}
		next, err := u.Parse(loc)
		if err != nil {
			return fail(abi.CauseHTTPRedirectDenied, "redirect to a bad URL: %v", unwrapURLError(err))
		}
		if next.User != nil {
			return fail(abi.CauseHTTPRedirectDenied, "redirect to %s carries userinfo", redactURL(next))
		}
		// A 303, or a 301/302 after a POST, becomes a GET without a body
		// (what browsers and Go's client do); 307 and 308 keep both.
		if resp.StatusCode == http.StatusSeeOther ||
			((resp.StatusCode == http.StatusMovedPermanently || resp.StatusCode == http.StatusFound) && method == http.MethodPost) {
			if method != http.MethodHead {
				method = http.MethodGet
			}
			body = nil
			header.Del("Content-Type")
			header.Del("Content-Length")
		}
		if !sameOrigin(u, next) {
			for name := range header {
				if isCredential(name) {
					delete(header, name)
				}
			}
		}
		u = next
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// drain reads a little of a body that is thrown away, so that its
// connection can serve again, and closes it.
func drain(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 4<<10)
	_ = b.Close()
}

// read takes the response's body, within the limits.
func (s *Session) read(ctx context.Context, u *url.URL, resp *http.Response, st *stall) abi.HTTPResponse {
	defer resp.Body.Close()
	max := s.c.p.Limits.MaxResponseBytes
	if resp.ContentLength > max {
		return fail(abi.CauseHTTPTooLarge, "the response body is %d bytes, the limit is %d", resp.ContentLength, max)
	}
	// Read at most one byte more than allowed, whatever Content-Length
	// claims (and however well a gzip body compresses: this counts the
	// decoded bytes).
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(stallReader{resp.Body, st}, max+1))
	if err != nil {
		return s.transportFailure(ctx, u, err)
	}
	if int64(buf.Len()) > max {
		return fail(abi.CauseHTTPTooLarge, "the response body is over the limit of %d bytes", max)
	}
	out := abi.HTTPResponse{Status: resp.StatusCode, Body: buf.String(), URL: u.String(),
		Headers: make(map[string][]string, len(resp.Header))}
	for name, values := range resp.Header {
		out.Headers[strings.ToLower(name)] = values
	}
	return out
}

// transportFailure names why a request got no response.
func (s *Session) transportFailure(ctx context.Context, u *url.URL, err error) abi.HTTPResponse {
	lim := s.c.p.Limits
	switch {
	case isBlocked(err):
		var b *blockedError
		errors.As(err, &b)
		return fail(abi.CauseHTTPBlockedAddress, "%s: %v", origin(u), b.err)
	case errors.Is(context.Cause(ctx), errStalled):
		return fail(abi.CauseHTTPTimeout, "%s: no byte for %s (stall timeout)", origin(u), lim.StallTimeout)
	case ctx.Err() != nil:
		return fail(abi.CauseHTTPTimeout, "%s: the request ran past its timeout (%s) or the attempt's deadline", origin(u), lim.Timeout)
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// net/http's error for MaxResponseHeaderBytes is not exported.
		return fail(abi.CauseHTTPTooLarge, "%s: the response headers are over the limit of %d bytes", origin(u), lim.MaxHeaderBytes)
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		return fail(abi.CauseHTTPTimeout, "%s: no response headers within %s (stall timeout)", origin(u), lim.StallTimeout)
	}
	return fail(abi.CauseHTTPNetwork, "%s: %v", origin(u), unwrapURLError(err))
}

// origin is u's scheme, host and port, what messages name (never its path
// or query, which may hold what a step should not see in a log).
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	c.RawQuery, c.Fragment = "", ""
	return c.String()
}

// unwrapURLError drops *url.Error's "Get URL:" prefix, which repeats the
// whole URL (query included) into messages.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
