//go:build integration

package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is a loopback HTTP server that counts its requests.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) port() string {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p
}

// stepResult is a step as `12fa status --json` shows it.
type stepResult struct {
	ID      string          `json:"id"`
	Status  string          `json:"status"`
	Attempt int             `json:"attempt"`
	Cause   string          `json:"cause"`
	Error   string          `json:"error"`
	Output  json.RawMessage `json:"output"`
}

// runFetch runs a one-step workflow of the fetch example with the given
// input and [step.allow] lines in a new project, and returns the step as
// status shows it and what run printed.
func runFetch(t *testing.T, input, allow string, env ...string) (stepResult, string) {
	t.Helper()
	dir, path := fetchProject(t, "fetch", false, input, allow)
	cmd := exec.Command(bin, "-C", dir, "--cache-dir", cacheDir, "run", path)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	step, _ := fetchStatus(t, dir)
	return step, string(out)
}

// fetchProject writes, in a new project, a workflow named name of one step,
// fetch, running the fetch example with input and the [step.allow] lines
// allow; with work set, the project has a directory work/ (granted by
// allow as it likes). It returns the project and the manifest.
func fetchProject(t *testing.T, name string, work bool, input, allow string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if work {
		if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := fmt.Sprintf("[workflow]\nname = %q\n[[step]]\nid = \"fetch\"\nplugin = %q\ninput = %s\n[step.allow]\n%s\n",
		name, filepath.Join(examples(t), "fetch", "fetch.wasm"), input, allow)
	path := filepath.Join(dir, "plugin-manifest.toml")
	if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// fetchedBody is the body of the first response a fetch step returned.
func fetchedBody(t *testing.T, step stepResult) string {
	t.Helper()
	var out struct {
		Responses []struct {
			Status  int                 `json:"status"`
			Headers map[string][]string `json:"headers"`
			Body    string              `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(step.Output, &out); err != nil || len(out.Responses) == 0 {
		t.Fatalf("fetch output %s: %v", step.Output, err)
	}
	return out.Responses[0].Body
}

func fetchInput(urls ...string) string {
	var reqs []string
	for _, u := range urls {
		reqs = append(reqs, fmt.Sprintf("{ url = %q }", u))
	}
	return "{ requests = [" + strings.Join(reqs, ", ") + "] }"
}

// TestHTTPGrants: a step reaches exactly what its grants name, through the
// binary: a granted loopback server answers; without the grant, or on a
// port or scheme it does not name, the request is refused before anything
// is sent, and the step fails with the reason as its cause.
func TestHTTPGrants(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Method)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
	step, out := runFetch(t, fetchInput(s.URL+"/one"), fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", s.URL))
	if step.Status != "completed" || fetchedBody(t, step) != "hello /one" || !strings.Contains(string(step.Output), `"GET"`) {
		t.Fatalf("granted request: %+v\n%s", step, out)
	}
	if s.hits.Load() != 1 {
		t.Errorf("%d hits, want 1", s.hits.Load())
	}
	for name, tc := range map[string]struct{ allow, cause string }{
		"no grant":      {"", "http_denied"},
		"other port":    {`hosts = ["http://127.0.0.1:1"]` + "\nprivate = [\"127.0.0.1\"]", "http_denied"},
		"https only":    {fmt.Sprintf("hosts = [%q]\nprivate = [\"127.0.0.1\"]", strings.Replace(s.URL, "http:", "https:", 1)), "http_denied"},
		"method":        {fmt.Sprintf("hosts = [{ url = %q, methods = [\"POST\"] }]\nprivate = [\"127.0.0.1\"]", s.URL), "http_denied"},
		"no private":    {fmt.Sprintf("hosts = [%q]", s.URL), "http_blocked_address"},
		"localhost":     {fmt.Sprintf("hosts = [\"http://localhost:%s\"]", s.port()), "http_blocked_address"},
		"mapped v6":     {fmt.Sprintf("hosts = [\"http://[::ffff:127.0.0.1]:%s\"]", s.port()), "http_blocked_address"},
		"wrong private": {fmt.Sprintf("hosts = [%q]\nprivate = [\"10.0.0.0/8\"]", s.URL), "http_blocked_address"},
	} {
		url := s.URL + "/denied"
		switch name {
		case "localhost":
			url = "http://localhost:" + s.port() + "/denied"
		case "mapped v6":
			url = "http://[::ffff:127.0.0.1]:" + s.port() + "/denied"
		}
		step, out := runFetch(t, fetchInput(url), tc.allow)
		if step.Status != "failed" || step.Cause != tc.cause || step.Attempt != 1 {
			t.Errorf("%s: %s attempt %d cause %q (%s), want failed with %s after 1 attempt\n%s", name, step.Status, step.Attempt, step.Cause, step.Error, tc.cause, out)
		}
	}
	if s.hits.Load() != 1 {
		t.Errorf("refused requests reached the server: %d hits, want 1", s.hits.Load())
	}
}

// TestHTTPAttacks runs the attacks a hostile step (or a hostile server) can
// make through the binary, each against loopback servers granted with
// allow.private, and checks what each produced.
func TestHTTPAttacks(t *testing.T) {
	denied := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	proxy := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "via proxy") })
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 256<<20))
	_ = zw.Close()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, denied.URL+"/stolen", http.StatusFound)
		case "/lying":
			// Claims a little, sends a lot: only what it claims is read.
			w.Header().Set("Content-Length", "5")
			_, _ = w.Write([]byte("small"))
		case "/big":
			w.(http.Flusher).Flush() // chunked: no length to check up front
			for range 64 {
				_, _ = w.Write(make([]byte, 64<<10))
			}
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb.Bytes())
		case "/silent":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/trickle":
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			for range 1000 {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				select {
				case <-time.After(time.Second):
				case <-r.Context().Done():
					return
				case <-release:
					return
				}
			}
		default:
			fmt.Fprint(w, "direct")
		}
	})
	grant := fmt.Sprintf("hosts = [%q, \"http://169.254.169.254\"]\nprivate = [\"127.0.0.1\"]\nhttp = { max_response = \"1MiB\", timeout = \"2s\", stall_timeout = \"500ms\" }", s.URL)
	tests := []struct {
		name, path, cause string
		env               []string
		allow             string // instead of grant
		// within bounds how long the run may take.
		within time.Duration
	}{
		{name: "redirect to a host not granted", path: "/redirect", cause: "http_redirect_denied"},
		{name: "metadata address", path: "http://169.254.169.254/latest/meta-data/", cause: "http_blocked_address"},
		{name: "body over the cap, chunked", path: "/big", cause: "http_too_large"},
		{name: "gzip bomb (256 MiB of zeros)", path: "/gzip", cause: "http_too_large"},
		{name: "headers never sent", path: "/silent", cause: "http_timeout", within: 500*time.Millisecond + 3*time.Second},
		{name: "a body of 1 byte a second", path: "/trickle", cause: "http_timeout", within: 2*time.Second + 3*time.Second,
			allow: strings.Replace(grant, `stall_timeout = "500ms"`, `stall_timeout = "5s"`, 1)},
		{name: "lying Content-Length", path: "/lying", cause: ""},
		{name: "HTTP_PROXY in the host's environment", path: "/", cause: "", env: []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY="}},
	}
	var table strings.Builder
	for _, tc := range tests {
		url := tc.path
		if strings.HasPrefix(url, "/") {
			url = s.URL + url
		}
		allow := grant
		if tc.allow != "" {
			allow = tc.allow
		}
		start := time.Now()
		step, out := runFetch(t, fetchInput(url), allow, tc.env...)
		took := time.Since(start)
		fmt.Fprintf(&table, "| %s | %s %s | %s |\n", tc.name, step.Status, step.Cause, took.Round(10*time.Millisecond))
		switch {
		case tc.cause == "" && step.Status != "completed":
			t.Errorf("%s: %s %s (%s)\n%s", tc.name, step.Status, step.Cause, step.Error, out)
		case tc.cause != "" && (step.Status != "failed" || step.Cause != tc.cause):
			t.Errorf("%s: %s %q (%s), want %s\n%s", tc.name, step.Status, step.Cause, step.Error, tc.cause, out)
		}
		if tc.within > 0 && took > tc.within {
			t.Errorf("%s: the run took %s, want at most %s", tc.name, took, tc.within)
		}
		if tc.name == "lying Content-Length" && fetchedBody(t, step) != "small" {
			t.Errorf("lying Content-Length: %s", step.Output)
		}
		if tc.env != nil && fetchedBody(t, step) != "direct" {
			t.Errorf("proxy: %s", step.Output)
		}
	}
	if denied.hits.Load() != 0 || proxy.hits.Load() != 0 {
		t.Errorf("the denied server got %d requests, the proxy %d; want 0", denied.hits.Load(), proxy.hits.Load())
	}
	t.Logf("\n| attack | outcome | run took |\n|---|---|---|\n%s", table.String())
}

// TestHTTPRetry: a timeout is retried (the step is idempotent), and each
// attempt's request carries the same Idempotency-Key.
func TestHTTPRetry(t *testing.T) {
	var keys []string
	var mu sync.Mutex
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		time.Sleep(300 * time.Millisecond)
	})
	dir := t.TempDir()
	m := fmt.Sprintf(`[workflow]
name = "retry"
[[step]]
id = "slow"
plugin = %q
idempotent = true
retry = { max_attempts = 3, initial_interval = "10ms" }
input = %s
[step.allow]
hosts = [%q]
private = ["127.0.0.1"]
http = { timeout = "100ms", idempotency_key = true }
`, filepath.Join(examples(t), "fetch", "fetch.wasm"), fetchInput(s.URL), s.URL)
	path := filepath.Join(dir, "m.toml")
	if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-C", dir, "--cache-dir", cacheDir, "run", path).CombinedOutput()
	if got := strings.Count(string(out), "http_timeout"); got < 3 || s.hits.Load() != 3 {
		t.Errorf("%d hits, %d http_timeout lines; want 3 attempts\n%s", s.hits.Load(), got, out)
	}
	// The same call gets the same Idempotency-Key in every attempt.
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("Idempotency-Key of the attempts: %q", keys)
	}
}

// TestHTTPFromJS: a JavaScript step's host.fetch (fetch-shaped, on
// host.http) through the binary, and its rejection with the cause.
func TestHTTPFromJS(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		b := make([]byte, 16)
		n, _ := r.Body.Read(b)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("X-A"), b[:n])
	})
	dir := t.TempDir()
	script := `async function run(env) {
  const r = await host.fetch(env.input.url, { method: "POST", headers: { "X-A": "1" }, body: "payload" });
  const out = { ok: r.ok, status: r.status, type: r.headers.get("Content-Type"), body: await r.text() };
  try { await host.fetch("https://denied.example/"); } catch (e) { out.denied = e.code; }
  return out;
}
`
	if err := os.WriteFile(filepath.Join(dir, "step.js"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf("[workflow]\nname = \"js\"\n[[step]]\nid = \"js\"\nplugin = \"step.js\"\ninput = { url = %q }\n[step.allow]\nhosts = [%q]\nprivate = [\"127.0.0.1\"]\n", s.URL+"/p", s.URL)
	path := filepath.Join(dir, "plugin-manifest.toml")
	if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run12faIn(t, dir, "run", path)
	step, _ := fetchStatus(t, dir)
	var got map[string]any
	_ = json.Unmarshal(step.Output, &got)
	if step.Status != "completed" || got["body"] != "POST 1 payload" || got["ok"] != true || got["type"] != "text/plain" || got["denied"] != "http_denied" {
		t.Fatalf("%+v %v\n%s", step, got, out)
	}
}
