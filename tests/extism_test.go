//go:build integration

package tests

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"

	"github.com/12fa/12fa/egress"
	"github.com/12fa/12fa/host"
)

// extismCase is one call of a plugin from extism/go-sdk's wasm/ folder,
// with the function, input and config go-sdk's own tests use.
type extismCase struct {
	wasm, fn string
	input    string
	config   map[string]string
	// mounts are go-sdk's AllowedPaths ("ro:" prefix for read-only), the
	// host side relative to go-sdk's module directory.
	mounts  map[string]string
	timeout time.Duration
	// calls is how many calls are made in a row on one plugin (default 1);
	// the outcome of each is compared.
	calls int
	// hosts are the origins the case may reach (12fa's allow.hosts; go-sdk
	// gets their host names as AllowedHosts). Both hosts send them to
	// referenceServer, whatever name they resolve.
	hosts []string
	// diff, when set, is a deliberate difference: the outcomes must differ
	// (in words, output or logs, never in kind), and diff says why. A case
	// without it must match go-sdk exactly.
	diff string
}

// hostMounts reads the case's go-sdk-style mounts, relative to go-sdk's
// directory dir.
func (c extismCase) hostMounts(dir string) []host.Mount {
	var out []host.Mount
	for h, g := range c.mounts {
		rel, readOnly := strings.CutPrefix(h, "ro:")
		out = append(out, host.Mount{HostPath: filepath.Join(dir, rel), GuestPath: g, ReadWrite: !readOnly})
	}
	return out
}

// Deliberate differences.
const (
	diffHTTPDenied = "a request allow.hosts does not grant: both trap, each in its own words (12fa's name the cause, http_denied)"
	diffHost       = "host functions 12fa does not provide: refused at load, naming each import (go-sdk fails at instantiation)"
	diffLink       = "module linking: a step is one module; its import of another is refused at load"
	diffVars       = "vars end with the attempt (state that lasts goes through ctx_set): the second call starts with none, go-sdk's keeps the first call's"
	diffTime       = "a timeout is reported in 12fa's words"
	diffExit       = "a guest's exit is reported in 12fa's words"
)

var extismCases = []extismCase{
	{wasm: "alloc.wasm", fn: "run_test"},
	{wasm: "config.wasm", fn: "run_test", config: map[string]string{"thing": "hello"}},
	{wasm: "config.wasm", fn: "run_test"},
	{wasm: "count_vowels.wasm", fn: "count_vowels", input: "hello world"},
	{wasm: "count_vowels.wasm", fn: "count_vowels", input: "aaa", calls: 2, diff: diffVars},
	{wasm: "count_vowels_std.wasm", fn: "_start", input: "hello world"},
	{wasm: "exit.wasm", fn: "_start", config: map[string]string{"code": "500"}, diff: diffExit},
	{wasm: "exit.wasm", fn: "_start", config: map[string]string{"code": "0"}},
	{wasm: "exit.wasm", fn: "_start", config: map[string]string{"code": "abc"}, diff: diffExit},
	{wasm: "fail.wasm", fn: "run_test"},
	{wasm: "fs.wasm", fn: "run_test", mounts: map[string]string{"testdata": "/mnt"}},
	{wasm: "fs_std.wasm", fn: "run_test", mounts: map[string]string{"testdata": "/mnt"}},
	{wasm: "hello.wasm", fn: "run_test"},
	{wasm: "hello_haskell.wasm", fn: "testing", input: "John", config: map[string]string{"greeting": "Howdy"}},
	{wasm: "host.wasm", fn: "run_test", diff: diffHost},
	{wasm: "host_memory.wasm", fn: "run_test", input: "Frodo", diff: diffHost},
	{wasm: "host_multiple.wasm", fn: "say_green", input: "John Doe", diff: diffHost},
	{wasm: "http.wasm", fn: "run_test", hosts: []string{"https://jsonplaceholder.typicode.com"}},
	{wasm: "http.wasm", fn: "run_test", diff: diffHTTPDenied},
	{wasm: "http_headers.wasm", fn: "http_get", input: `{"url":"https://extism.org","headers":{},"method":"GET"}`, hosts: []string{"https://extism.org"}},
	{wasm: "http_headers.wasm", fn: "http_get", input: `{"url":"https://extism.org","headers":{},"method":"GET"}`, hosts: []string{"https://example.org"}, diff: diffHTTPDenied},
	{wasm: "input_offset.wasm", fn: "input_offset_length", input: "hello world"},
	{wasm: "log.wasm", fn: "run_test"},
	{wasm: "main.wasm", fn: "run_test", input: "benjamin", diff: diffLink},
	{wasm: "nested.c.instr.wasm", fn: "_start", diff: diffHost},
	{wasm: "noop.wasm", fn: "run_test"},
	{wasm: "println.wasm", fn: "run_test", input: "hello"},
	{wasm: "read_write.wasm", fn: "try_read", config: map[string]string{"path": "/mnt/test.txt"}, mounts: map[string]string{"ro:testdata": "/mnt"}},
	{wasm: "read_write.wasm", fn: "try_write", input: "hello hello!", config: map[string]string{"path": "/mnt/test.txt"}, mounts: map[string]string{"ro:testdata": "/mnt"}},
	{wasm: "replace.wasm", fn: "run_test", input: "aaa bbb aaa"},
	{wasm: "sleep.wasm", fn: "run_test", config: map[string]string{"duration": "3"}, timeout: 100 * time.Millisecond, diff: diffTime},
	{wasm: "std_command.wasm", fn: "_start", input: "ben"},
	{wasm: "var.wasm", fn: "run_test", calls: 2},
}

// notCovered lists the files of go-sdk's wasm/ folder no case calls, and
// why.
var notCovered = map[string]string{
	"lib.wasm": "a library main.wasm links with; it exports no step function",
}

// extismOutcome is what a call observably did.
type extismOutcome struct {
	kind   string // ok, error, exit, timeout, trap, refused
	text   string // the output, or the error's words
	logs   []string
	stdout string
}

func (o extismOutcome) String() string {
	s := o.kind
	if o.text != "" {
		t := o.text
		if len(t) > 70 {
			t = t[:70] + "…"
		}
		s += fmt.Sprintf(" %q", t)
	}
	if len(o.logs) > 0 {
		s += fmt.Sprintf(", %d log lines", len(o.logs))
	}
	if o.stdout != "" {
		s += fmt.Sprintf(", stdout %q", o.stdout)
	}
	return s
}

func (o extismOutcome) equal(p extismOutcome) bool {
	return o.kind == p.kind && o.text == p.text && slices.Equal(o.logs, p.logs) && o.stdout == p.stdout
}

// goSDKDir is where the Go toolchain keeps extism/go-sdk (a test-only
// dependency in go.mod).
func goSDKDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/extism/go-sdk").Output()
	if err != nil {
		t.Fatalf("go list extism/go-sdk: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// goSDKOwnLogs are lines go-sdk logs itself, not the guest.
var goSDKOwnLogs = []string{"Calling function", "Calling _initialize", "Initializing runtime", "Initialized Haskell", "Haskell runtime detected", "No runtime detected",
	"WASI runtime detected", "Reactor module detected", "Command module detected", "hs_init function found"}

func runGoSDK(t *testing.T, dir string, c extismCase) []extismOutcome {
	m := extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: filepath.Join(dir, "wasm", c.wasm)}},
		Config: c.config, Memory: &extism.ManifestMemory{MaxPages: 1024, MaxVarBytes: 1 << 20, MaxHttpResponseBytes: 50 << 20}, Timeout: uint64(c.timeout.Milliseconds())}
	for _, h := range c.hosts {
		u, err := url.Parse(h)
		if err != nil {
			t.Fatal(err)
		}
		m.AllowedHosts = append(m.AllowedHosts, u.Hostname())
	}
	if len(c.mounts) > 0 {
		m.AllowedPaths = map[string]string{}
		for _, mt := range c.hostMounts(dir) {
			if mt.ReadWrite {
				m.AllowedPaths[mt.HostPath] = mt.GuestPath
			} else {
				m.AllowedPaths["ro:"+mt.HostPath] = mt.GuestPath
			}
		}
	}
	var stdout bytes.Buffer
	var logs []string
	extism.SetLogLevel(extism.LogLevelTrace)
	// As go-sdk's own tests make plugins.
	cp, err := extism.NewCompiledPlugin(context.Background(), m, extism.PluginConfig{EnableWasi: true, EnableHttpResponseHeaders: true}, nil)
	if err != nil {
		return []extismOutcome{{kind: "refused", text: firstLineOf(err.Error())}}
	}
	defer cp.Close(context.Background())
	p, err := cp.Instance(context.Background(), extism.PluginInstanceConfig{
		// 12fa gives guests the real clocks; so does go-sdk's own timeout test.
		ModuleConfig: wazero.NewModuleConfig().WithSysWalltime().WithSysNanotime().WithStdout(&stdout)})
	if err != nil {
		return []extismOutcome{{kind: "refused", text: firstLineOf(err.Error())}}
	}
	defer p.Close(context.Background())
	p.SetLogger(func(l extism.LogLevel, msg string) {
		for _, own := range goSDKOwnLogs {
			if strings.HasPrefix(msg, own) {
				return
			}
		}
		logs = append(logs, strings.ToLower(l.String())+": "+msg)
	})
	var outs []extismOutcome
	for range max(c.calls, 1) {
		logs, stdout = nil, bytes.Buffer{}
		exit, out, err := p.Call(c.fn, []byte(c.input))
		o := extismOutcome{kind: "ok", text: string(out)}
		var exitErr interface{ ExitCode() uint32 }
		switch {
		case err == nil && exit == 0:
		case err != nil && strings.Contains(err.Error(), "deadline exceeded"):
			o = extismOutcome{kind: "timeout", text: err.Error()}
		case errors.As(err, &exitErr) || (err != nil && strings.HasPrefix(err.Error(), "module closed with exit_code")):
			o = extismOutcome{kind: "exit", text: err.Error()}
		case err != nil && strings.Contains(err.Error(), "wasm error"):
			o = extismOutcome{kind: "trap", text: firstLineOf(err.Error())}
		case err != nil:
			o = extismOutcome{kind: "error", text: err.Error()}
		default:
			o = extismOutcome{kind: "error", text: fmt.Sprintf("exit %d", exit)}
		}
		o.logs, o.stdout = logs, stdout.String()
		outs = append(outs, o)
	}
	return outs
}

func run12fa(t *testing.T, h *host.Host, dir string, c extismCase) []extismOutcome {
	wasm, err := os.ReadFile(filepath.Join(dir, "wasm", c.wasm))
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Load(context.Background(), wasm, host.Limits{MaxPages: 1024})
	if err != nil {
		return []extismOutcome{{kind: "refused", text: firstLineOf(err.Error())}}
	}
	mounts := c.hostMounts(dir)
	var client *egress.Client
	if len(c.hosts) > 0 {
		p := egress.Policy{Private: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, TLS: referenceTLS,
			LookupNetIP: func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{referenceAddr}, nil },
			Dial:        referenceDial}
		for _, h := range c.hosts {
			o, err := egress.ParseOrigin(h, nil)
			if err != nil {
				t.Fatal(err)
			}
			p.Origins = append(p.Origins, o)
		}
		client = egress.NewClient(p)
		defer client.Close()
	}
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var outs []extismOutcome
	for range max(c.calls, 1) {
		req := host.Request{Function: c.fn, Input: []byte(c.input), Config: c.config, Timeout: timeout, Mounts: mounts}
		if client != nil {
			req.HTTP = client.Session()
		}
		res, err := p.Call(context.Background(), req)
		o := extismOutcome{kind: "ok"}
		var ce *host.CallError
		switch {
		case err == nil:
			o.text = string(res.Output)
		case errors.As(err, &ce) && ce.Guest != nil:
			o = extismOutcome{kind: "error", text: ce.Guest.Error()}
		case errors.Is(err, host.ErrTimeout):
			o = extismOutcome{kind: "timeout", text: err.Error()}
		case errors.As(err, &ce) && strings.Contains(ce.Detail, "guest exited"):
			o = extismOutcome{kind: "exit", text: err.Error()}
		case errors.Is(err, host.ErrTrap) || errors.Is(err, host.ErrMemoryLimit):
			o = extismOutcome{kind: "trap", text: strings.TrimPrefix(err.Error(), "trap: ")}
		default:
			o = extismOutcome{kind: "error", text: err.Error()}
		}
		if res != nil {
			var stdout []string
			for _, l := range res.Logs {
				switch l.Source {
				case "log":
					o.logs = append(o.logs, l.Level.String()+": "+l.Message)
				case "stdout":
					stdout = append(stdout, l.Message+"\n")
				}
			}
			o.stdout = strings.Join(stdout, "")
		}
		outs = append(outs, o)
	}
	return outs
}

// The server both hosts' HTTP requests reach, and how 12fa's reach it.
var (
	referenceAddr = netip.MustParseAddr("127.0.0.1")
	referenceTLS  = &tls.Config{InsecureSkipVerify: true} // its certificate names neither host
)

// startReferenceServer serves what go-sdk's HTTP plugins fetch (a todo of
// jsonplaceholder.typicode.com, extism.org's home page) over TLS on
// loopback, and points go-sdk's HTTP client (http.DefaultClient) at it; the
// returned function undoes that.
func startReferenceServer(t *testing.T) func() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Wed, 02 Dec 2026 12:00:00 GMT") // both hosts see the same headers
		switch {
		case r.Host == "jsonplaceholder.typicode.com" && r.URL.Path == "/todos/1":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			fmt.Fprint(w, `{"userId": 1, "id": 1, "title": "delectus aut autem", "completed": false}`)
		case r.Host == "extism.org":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Add("Vary", "Accept-Encoding")
			w.Header().Add("Vary", "Origin")
			fmt.Fprint(w, "<html>extism</html>")
		default:
			http.NotFound(w, r)
		}
	}))
	referenceDial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	old := http.DefaultTransport
	http.DefaultTransport = &http.Transport{TLSClientConfig: referenceTLS, Proxy: nil, DialContext: referenceDial}
	return func() { http.DefaultTransport = old; srv.Close() }
}

// referenceDial reaches the reference server, whatever address is asked.
var referenceDial func(ctx context.Context, network, addr string) (net.Conn, error)

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// TestExtismReference runs every plugin of extism/go-sdk's own wasm/
// folder, with the inputs its tests use, in go-sdk (the reference) and in
// 12fa's host, and compares outcome, output, error text, log lines and
// stdout. A difference that is not listed fails it, and so does a listed
// one that went away.
func TestExtismReference(t *testing.T) {
	// go-sdk logs what it detects through the standard logger.
	log.SetOutput(io.Discard)
	defer log.SetOutput(os.Stderr)
	dir := goSDKDir(t)
	stopServer := startReferenceServer(t)
	defer stopServer()
	h, err := host.New(context.Background(), host.Config{CacheDir: filepath.Join(cacheDir, "extism")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())

	covered := map[string]bool{}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| plugin | function | go-sdk v1.7.1 | 12fa | |\n|---|---|---|---|---|\n")
	for _, c := range extismCases {
		covered[c.wasm] = true
		ref, got := runGoSDK(t, dir, c), run12fa(t, h, dir, c)
		same, sameKind := len(ref) == len(got), len(ref) == len(got)
		for i := range ref {
			same = same && ref[i].equal(got[i])
			sameKind = sameKind && ref[i].kind == got[i].kind
		}
		verdict := "same"
		if !same {
			verdict = "differs: " + c.diff
		}
		for i := range ref {
			fmt.Fprintf(&table, "| %s | %s | %s | %s | %s |\n", c.wasm, c.fn, ref[i], got[i], verdict)
		}
		switch {
		case !same && c.diff == "":
			for i := range ref {
				t.Errorf("%s %s (call %d): go-sdk %s\n\t12fa %s", c.wasm, c.fn, i+1, ref[i], got[i])
				if !slices.Equal(ref[i].logs, got[i].logs) {
					t.Errorf("\tlogs: go-sdk %q\n\t      12fa   %q", ref[i].logs, got[i].logs)
				}
			}
		case !sameKind:
			// Even a deliberate difference is in the words, never in what
			// happened.
			t.Errorf("%s %s: go-sdk %s, 12fa %s: not the same outcome", c.wasm, c.fn, ref, got)
		case same && c.diff != "":
			t.Errorf("%s %s: listed as a deliberate difference (%s), but 12fa now does what go-sdk does: %s", c.wasm, c.fn, c.diff, got[0])
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wasm") && !covered[e.Name()] && notCovered[e.Name()] == "" {
			t.Errorf("go-sdk's wasm/%s is not compared", e.Name())
		}
	}
	t.Log(table.String())
}
