package egress_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/egress"
)

// server is a loopback test server that counts its requests.
type server struct {
	*httptest.Server
	hits atomic.Int64
	last atomic.Pointer[http.Request]
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.last.Store(r)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func origin(t *testing.T, raw string, methods ...string) egress.Origin {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := egress.ParseOrigin(u.Scheme+"://"+u.Host, methods)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func do(t *testing.T, p egress.Policy, req abi.HTTPRequest) abi.HTTPResponse {
	t.Helper()
	c := egress.NewClient(p)
	defer c.Close()
	return c.Session().Do(t.Context(), req)
}

func wantCode(t *testing.T, resp abi.HTTPResponse, code abi.Cause) {
	t.Helper()
	if resp.Error == nil || resp.Error.Code != code {
		t.Fatalf("response %+v, want error %s", resp, code)
	}
}

func TestParseOrigin(t *testing.T) {
	good := map[string]string{
		"https://api.openai.com":        "https://api.openai.com",
		"HTTPS://API.OpenAI.com/":       "https://api.openai.com",
		"https://*.example.com:8443":    "https://*.example.com:8443",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://[::1]:9000":             "http://[::1]:9000",
		"https://api.openai.com:443":    "https://api.openai.com",
		"http://localhost":              "http://localhost",
		"https://example.com:8443/":     "https://example.com:8443",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	}
	for in, want := range good {
		o, err := egress.ParseOrigin(in, nil)
		if err != nil || o.String() != want {
			t.Errorf("ParseOrigin(%q) = %v, %v; want %s", in, o, err, want)
		}
	}
	for _, in := range []string{
		"api.openai.com", "ftp://x.com", "https://x.com/v1", "https://user@x.com", "https://api.*.com",
		"https://*", "https://x*.com", "https://x.com:0", "https://x.com:99999", "https://*.10.0.0.1",
		"https://x.com?q=1", "https://x.com#f", "file:///etc/passwd",
	} {
		if o, err := egress.ParseOrigin(in, nil); err == nil {
			t.Errorf("ParseOrigin(%q) = %v, want an error", in, o)
		}
	}
	if _, err := egress.ParseOrigin("https://x.com", []string{"GE T"}); err == nil {
		t.Error("a bad method was accepted")
	}
}

func TestOriginAllows(t *testing.T) {
	wild, _ := egress.ParseOrigin("https://*.example.com:8443", nil)
	api, _ := egress.ParseOrigin("https://api.x.com", []string{"get"})
	tests := []struct {
		o      egress.Origin
		method string
		url    string
		want   bool
	}{
		{wild, "GET", "https://a.example.com:8443/p", true},
		{wild, "GET", "https://a.b.example.com:8443/p", true},
		{wild, "GET", "https://example.com:8443/", false}, // strict subdomains only
		{wild, "GET", "https://evilexample.com:8443/", false},
		{wild, "GET", "https://a.example.com/", false}, // port 443
		{wild, "GET", "http://a.example.com:8443/", false},
		{api, "GET", "https://api.x.com/v1?q", true},
		{api, "GET", "https://API.X.COM/", true},
		{api, "POST", "https://api.x.com/", false},
		{api, "GET", "https://api.x.com:22/", false},
		{api, "GET", "http://api.x.com/", false},
		{api, "GET", "https://api.x.com.evil.com/", false},
	}
	for _, tc := range tests {
		u, _ := url.Parse(tc.url)
		if got := tc.o.Allows(tc.method, u); got != tc.want {
			t.Errorf("%s allows %s %s = %v, want %v", tc.o, tc.method, tc.url, got, tc.want)
		}
	}
}

func TestParsePrivate(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3/24": "10.1.2.0/24", "127.0.0.1": "127.0.0.1/32", "::ffff:10.0.0.1": "10.0.0.1/32", "fd00::/8": "fd00::/8"} {
		p, err := egress.ParsePrivate(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrivate(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"10.0.0.0/33", "localhost", ""} {
		if _, err := egress.ParsePrivate(in); err == nil {
			t.Errorf("ParsePrivate(%q) accepted", in)
		}
	}
}

func TestGetAndPost(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Step"), b)
	})
	p := egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback}
	resp := do(t, p, abi.HTTPRequest{Method: "post", URL: s.URL + "/a?b=c", Headers: map[string][]string{"x-step": {"one"}}, Body: "payload"})
	if resp.Error != nil || resp.Status != http.StatusTeapot || resp.Body != "POST /a?b=c one payload" {
		t.Fatalf("response %+v", resp)
	}
	if got := resp.Headers["x-multi"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("multi-valued header: %v", resp.Headers)
	}
	resp = do(t, p, abi.HTTPRequest{URL: s.URL, BodyBase64: "AP8="})
	if resp.Body != "GET /  \x00\xff" {
		t.Errorf("base64 body: %q", resp.Body)
	}
	if w := resp.Wire(); w.Body != "" || w.BodyBase64 == "" {
		t.Errorf("Wire kept a body that is not UTF-8 as text: %+v", w)
	}
}

func TestDenied(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	get := origin(t, s.URL, "GET")
	wantCode(t, do(t, egress.Policy{Private: loopback}, abi.HTTPRequest{URL: s.URL}), abi.CauseHTTPDenied)
	wantCode(t, do(t, egress.Policy{Origins: []egress.Origin{get}, Private: loopback}, abi.HTTPRequest{Method: "DELETE", URL: s.URL}), abi.CauseHTTPDenied)
	wantCode(t, do(t, egress.Policy{Origins: []egress.Origin{get}, Private: loopback}, abi.HTTPRequest{URL: "http://u:p@" + strings.TrimPrefix(s.URL, "http://")}), abi.CauseHTTPBadRequest)
	wantCode(t, do(t, egress.Policy{Origins: []egress.Origin{get}, Private: loopback}, abi.HTTPRequest{URL: "file:///etc/passwd"}), abi.CauseHTTPBadRequest)
	if s.hits.Load() != 0 {
		t.Errorf("the server got %d requests", s.hits.Load())
	}
}

// TestLoopbackBlocked: without allow.private, a loopback server is never
// dialed, whatever the URL says (a name, an address, an IPv4-mapped IPv6
// address), and a name that resolves to it is refused too.
func TestLoopbackBlocked(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	for _, raw := range []string{s.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port, "http://allowed.example:" + port} {
		p := egress.Policy{Origins: []egress.Origin{origin(t, raw)},
			LookupNetIP: func(context.Context, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}}
		wantCode(t, do(t, p, abi.HTTPRequest{URL: raw}), abi.CauseHTTPBlockedAddress)
	}
	// A name resolving to ::ffff:127.0.0.1.
	p := egress.Policy{Origins: []egress.Origin{origin(t, "http://mapped.example:"+port)},
		LookupNetIP: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
		}}
	wantCode(t, do(t, p, abi.HTTPRequest{URL: "http://mapped.example:" + port}), abi.CauseHTTPBlockedAddress)
	if s.hits.Load() != 0 {
		t.Errorf("the loopback server got %d requests", s.hits.Load())
	}
}

// TestRebinding: a resolver that answers a public address first and
// loopback next gets loopback refused, because the address checked is the
// one dialed, on every dial.
func TestRebinding(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	var lookups atomic.Int64
	p := egress.Policy{Origins: []egress.Origin{origin(t, "http://rebind.example:"+port)},
		Limits: egress.Limits{Timeout: 500 * time.Millisecond},
		LookupNetIP: func(context.Context, string) ([]netip.Addr, error) {
			if lookups.Add(1) == 1 {
				return []netip.Addr{netip.MustParseAddr("8.8.8.8")}, nil // public, and unreachable here
			}
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}}
	c := egress.NewClient(p)
	defer c.Close()
	first := c.Session().Do(t.Context(), abi.HTTPRequest{URL: "http://rebind.example:" + port})
	if first.Error == nil || first.Error.Code == abi.CauseHTTPBlockedAddress {
		t.Fatalf("first request (public address): %+v", first)
	}
	wantCode(t, c.Session().Do(t.Context(), abi.HTTPRequest{URL: "http://rebind.example:" + port}), abi.CauseHTTPBlockedAddress)
	if s.hits.Load() != 0 || lookups.Load() != 2 {
		t.Errorf("%d hits, %d lookups", s.hits.Load(), lookups.Load())
	}
}

// TestMetadataBlocked: the metadata address in every spelling a resolver
// might turn into it is refused, even when allow.hosts lists it and
// allow.private grants its whole /16; only its exact /32 grants it.
func TestMetadataBlocked(t *testing.T) {
	meta := netip.MustParseAddr("169.254.169.254")
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{meta}, nil // what glibc makes of 2852039166 and 0xA9FEA9FE
	}
	wide := []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fc00::/7")}
	for _, raw := range []string{
		"http://169.254.169.254", "http://[::ffff:169.254.169.254]", "http://[::ffff:a9fe:a9fe]", "http://2852039166",
		"http://0xA9FEA9FE", "http://[fd00:ec2::254]", "http://0.0.0.0", "http://[::]", "http://[64:ff9b::a9fe:a9fe]",
	} {
		p := egress.Policy{Origins: []egress.Origin{origin(t, raw)}, Private: wide, LookupNetIP: lookup,
			Limits: egress.Limits{Timeout: time.Second}}
		resp := do(t, p, abi.HTTPRequest{URL: raw + "/latest/meta-data/"})
		if strings.Contains(raw, "0.0.0.0") || strings.Contains(raw, "[::]") || strings.Contains(raw, "64:ff9b") {
			p.Private = nil
			resp = do(t, p, abi.HTTPRequest{URL: raw + "/"})
		}
		wantCode(t, resp, abi.CauseHTTPBlockedAddress)
	}
	// The exact /32 grants it: the dial is attempted (and fails here, no
	// metadata service being on this machine, or succeeds on a cloud VM).
	p := egress.Policy{Origins: []egress.Origin{origin(t, "http://169.254.169.254")},
		Private: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}, Limits: egress.Limits{Timeout: 300 * time.Millisecond}}
	if resp := do(t, p, abi.HTTPRequest{URL: "http://169.254.169.254/"}); resp.Error != nil && resp.Error.Code == abi.CauseHTTPBlockedAddress {
		t.Errorf("exact /32 grant still blocked: %+v", resp)
	}
}

// TestRedirects: each hop is checked against the grants; a hop to a host
// not granted is refused before it is sent; credentials are dropped on a
// hop to another origin; a 303 becomes a GET; the hop count is bounded.
func TestRedirects(t *testing.T) {
	denied := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s auth=%q key=%q accept=%q", r.Method, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("Accept"))
	})
	var a *server
	a = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-denied":
			http.Redirect(w, r, denied.URL+"/", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, other.URL+"/", http.StatusTemporaryRedirect)
		case "/see-other":
			http.Redirect(w, r, other.URL+"/", http.StatusSeeOther)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/echo", http.StatusFound)
		case "/echo":
			fmt.Fprintf(w, "auth=%q", r.Header.Get("Authorization"))
		}
	})
	p := egress.Policy{Origins: []egress.Origin{origin(t, a.URL), origin(t, other.URL)}, Private: loopback}
	wantCode(t, do(t, p, abi.HTTPRequest{URL: a.URL + "/to-denied"}), abi.CauseHTTPRedirectDenied)
	if denied.hits.Load() != 0 {
		t.Errorf("the denied server got %d requests", denied.hits.Load())
	}
	creds := map[string][]string{"Authorization": {"Bearer s3cret"}, "X-Api-Key": {"k3y"}, "Accept": {"text/plain"}}
	resp := do(t, p, abi.HTTPRequest{Method: "PUT", URL: a.URL + "/to-other", Headers: creds, Body: "x"})
	if resp.Error != nil || resp.Body != `PUT auth="" key="" accept="text/plain"` || resp.URL != other.URL+"/" {
		t.Errorf("cross-origin 307: %+v", resp)
	}
	resp = do(t, p, abi.HTTPRequest{Method: "POST", URL: a.URL + "/see-other", Body: "x"})
	if resp.Error != nil || !strings.HasPrefix(resp.Body, "GET ") {
		t.Errorf("303 after POST: %+v", resp)
	}
	resp = do(t, p, abi.HTTPRequest{URL: a.URL + "/same", Headers: creds})
	if resp.Body != `auth="Bearer s3cret"` {
		t.Errorf("same-origin hop dropped credentials: %+v", resp)
	}
	before := a.hits.Load()
	wantCode(t, do(t, p, abi.HTTPRequest{URL: a.URL + "/loop"}), abi.CauseHTTPRedirectDenied)
	if n := a.hits.Load() - before; n != abi.DefaultHTTPMaxRedirects+1 {
		t.Errorf("redirect loop: %d requests, want %d", n, abi.DefaultHTTPMaxRedirects+1)
	}
	p.NoRedirects = true
	if resp := do(t, p, abi.HTTPRequest{URL: a.URL + "/to-denied"}); resp.Status != http.StatusFound || resp.Headers["location"] == nil {
		t.Errorf("NoRedirects: %+v", resp)
	}
}

// TestDowngrade: an https origin granted does not grant its http twin, so a
// redirect from https to http is refused.
func TestDowngrade(t *testing.T) {
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/", http.StatusFound)
	}))
	defer tlsSrv.Close()
	_, plainPort, _ := net.SplitHostPort(strings.TrimPrefix(plain.URL, "http://"))
	https := origin(t, tlsSrv.URL)
	// Grant https on the plain server's port as well: still not http.
	httpsPlainPort, _ := egress.ParseOrigin("https://127.0.0.1:"+plainPort, nil)
	p := egress.Policy{Origins: []egress.Origin{https, httpsPlainPort}, Private: loopback, TLS: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig}
	wantCode(t, do(t, p, abi.HTTPRequest{URL: tlsSrv.URL}), abi.CauseHTTPRedirectDenied)
	if plain.hits.Load() != 0 {
		t.Errorf("the http server got %d requests", plain.hits.Load())
	}
}

// TestProxyIgnored: the host's proxy variables are never used.
func TestProxyIgnored(t *testing.T) {
	proxy := newServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "proxied") })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "direct") })
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"} {
		t.Setenv(v, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	resp := do(t, egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback}, abi.HTTPRequest{URL: s.URL})
	if resp.Body != "direct" || proxy.hits.Load() != 0 {
		t.Errorf("response %+v, proxy hits %d", resp, proxy.hits.Load())
	}
}

// TestTooLarge: a body over the cap, whatever Content-Length says and
// however well it compresses, and a header flood, each fail http_too_large
// having read at most one byte more than allowed.
func TestTooLarge(t *testing.T) {
	const max = 64 << 10
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 64<<20)) // 64 MiB of zeros, 64 KiB compressed
	_ = zw.Close()
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/claims":
			w.Header().Set("Content-Length", fmt.Sprint(max+1))
			_, _ = w.Write(make([]byte, max+1))
		case "/chunked":
			w.(http.Flusher).Flush()
			for range 4 {
				_, _ = w.Write(make([]byte, max/2))
			}
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb.Bytes())
		case "/headers":
			for i := range 2000 {
				w.Header().Set(fmt.Sprintf("X-Flood-%d", i), strings.Repeat("v", 100))
			}
		case "/exact":
			_, _ = w.Write(make([]byte, max))
		}
	})
	p := egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback, Limits: egress.Limits{MaxResponseBytes: max}}
	for _, path := range []string{"/claims", "/chunked", "/gzip", "/headers"} {
		wantCode(t, do(t, p, abi.HTTPRequest{URL: s.URL + path}), abi.CauseHTTPTooLarge)
	}
	if resp := do(t, p, abi.HTTPRequest{URL: s.URL + "/exact"}); resp.Error != nil || len(resp.Body) != max {
		t.Errorf("a body of exactly the limit: %v, %d bytes", resp.Error, len(resp.Body))
	}
}

// TestSlow: a server that never sends headers fails at the stall timeout,
// one that trickles its body at the request timeout; both well within the
// deadline plus a second, and no goroutine is left behind.
func TestSlow(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/trickle":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			for range 100 {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				select {
				case <-time.After(200 * time.Millisecond):
				case <-r.Context().Done():
					return
				case <-release:
					return
				}
			}
		}
	})
	defer close(release)
	before := runtime.NumGoroutine()
	p := egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback,
		Limits: egress.Limits{Timeout: 1500 * time.Millisecond, StallTimeout: 400 * time.Millisecond}}
	for path, limit := range map[string]time.Duration{"/silent": 400 * time.Millisecond, "/trickle": 1500 * time.Millisecond} {
		start := time.Now()
		resp := do(t, p, abi.HTTPRequest{URL: s.URL + path})
		took := time.Since(start)
		wantCode(t, resp, abi.CauseHTTPTimeout)
		if took < limit || took > limit+time.Second {
			t.Errorf("%s failed after %s, want %s to %s: %s", path, took, limit, limit+time.Second, resp.Error.Message)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after, %d before", n, before)
	}
}

func TestMaxRequests(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	c := egress.NewClient(egress.Policy{Origins: []egress.Origin{origin(t, s.URL)}, Private: loopback, Limits: egress.Limits{MaxRequests: 2}})
	defer c.Close()
	sess := c.Session()
	for i := range 3 {
		resp := sess.Do(t.Context(), abi.HTTPRequest{URL: s.URL})
		if i < 2 && resp.Error != nil {
			t.Fatalf("request %d: %v", i+1, resp.Error)
		}
		if i == 2 {
			wantCode(t, resp, abi.CauseHTTPLimit)
		}
	}
	if resp := c.Session().Do(t.Context(), abi.HTTPRequest{URL: s.URL}); resp.Error != nil {
		t.Errorf("a new attempt's session: %v", resp.Error)
	}
	if s.hits.Load() != 3 {
		t.Errorf("%d hits, want 3", s.hits.Load())
	}
}
