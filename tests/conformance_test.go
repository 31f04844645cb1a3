//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdhttp "net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/command"
	"github.com/12fa/12fa/egress"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsrunner"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// greetKits lists every language's build of the greet example
// (plugins/examples/GREET.md). Each must behave identically.
var greetKits = []struct{ lang, rel string }{
	{"go", "go-greet/go-greet.wasm"},
	{"c", "c-greet/c-greet.wasm"},
	{"rust", "rust-greet/rust-greet.wasm"},
	{"as", "as-greet/as-greet.wasm"},
	{"js", "js-greet/greet.js"},
}

// oneQuestion answers the greet step's one question, or leaves it open,
// and records what was asked.
type oneQuestion struct {
	answer string // "" leaves it unanswered
	mu     sync.Mutex
	asked  []abi.InputRequest
}

func (q *oneQuestion) RequestInput(_ context.Context, req abi.InputRequest) (abi.InputResponse, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked = append(q.asked, req)
	return abi.InputResponse{Answered: q.answer != "", Answer: q.answer, ID: "q-" + req.Key}, nil
}

type notifications struct {
	mu  sync.Mutex
	got []abi.Notification
}

func (n *notifications) Notify(_ context.Context, x abi.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
	return nil
}

type ctxMap map[string]json.RawMessage

func (m ctxMap) Get(k string) (json.RawMessage, bool) { v, ok := m[k]; return v, ok }

// greetCall is one call of a greet build and what it observably did.
type greetCall struct {
	res   *host.Result
	err   error
	asked []abi.InputRequest
	sent  []abi.Notification
}

// greetPlugin is a loaded greet build; a JavaScript one is the JS step
// runner with the script in its config, as the runtime runs it.
type greetPlugin struct {
	*host.Plugin
	config map[string]string
}

func loadGreet(t *testing.T, h *host.Host, rel string) greetPlugin {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]string
	if jsrunner.IsScript(rel) {
		b, config = jsrunner.Wasm, jsrunner.Config(nil, rel, b, "")
	}
	p, err := h.Load(t.Context(), b, host.Limits{MaxPages: 1024})
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return greetPlugin{p, config}
}

func callGreet(t *testing.T, p greetPlugin, input any, answer string, ctx ctxMap) greetCall {
	t.Helper()
	return callGreetHTTP(t, p, input, answer, ctx, nil)
}

// callGreetHTTP is callGreet with the step's HTTP (nil: none granted).
func callGreetHTTP(t *testing.T, p greetPlugin, input any, answer string, ctx ctxMap, http host.HTTPDoer) greetCall {
	t.Helper()
	return callGreetWith(t, p, input, answer, ctx, http, nil)
}

// callGreetWith is callGreet with the step's HTTP and commands (nil: none).
func callGreetWith(t *testing.T, p greetPlugin, input any, answer string, ctx ctxMap, http host.HTTPDoer, exec host.Execer) greetCall {
	t.Helper()
	in, _ := json.Marshal(input)
	env, _ := json.Marshal(abi.Envelope{Workflow: "conformance", RunID: "r1", Step: "greet", Attempt: 1, Input: in})
	q := &oneQuestion{answer: answer}
	n := &notifications{}
	res, err := p.Call(t.Context(), host.Request{Input: env, Timeout: 10 * time.Second,
		Context: ctx, Inputs: q, Notifier: n, Config: p.config, HTTP: http, Exec: exec})
	return greetCall{res: res, err: err, asked: q.asked, sent: n.got}
}

// guestLogs returns the lines the step logged through the ABI.
func guestLogs(r *host.Result) []string {
	var out []string
	for _, l := range r.Logs {
		if l.Source == "log" {
			out = append(out, l.Level.String()+" "+l.Message)
		}
	}
	return out
}

// TestConformance_Greet runs every language's greet through the real host
// and checks the same observable behaviour: the question it asks and the
// wait, the output, context reads and writes, logs, notifications, coded
// errors with their retry hints, and JSON escaping both ways. The table of
// results is logged.
func TestConformance_Greet(t *testing.T) {
	h, err := host.New(t.Context(), host.Config{CacheDir: cacheDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(t.Context())
	const name = `Zoë "Z" \ 🚀`
	srv := httptest.NewServer(stdhttp.HandlerFunc(func(w stdhttp.ResponseWriter, r *stdhttp.Request) {
		fmt.Fprintf(w, "hello from %s, %s", r.URL.Path, name)
	}))
	defer srv.Close()
	o, err := egress.ParseOrigin(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	web := egress.NewClient(egress.Policy{Origins: []egress.Origin{o}, Private: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	defer web.Close()
	echo, err := command.Resolve("echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	cmds := &command.Policy{Commands: []command.Command{{Name: "echo", Path: echo}}, Dirs: []command.Dir{{Guest: "/work", Host: t.TempDir()}}}
	checks := []struct {
		name string
		run  func(t *testing.T, lang string, p greetPlugin) error
	}{
		{"asks, then waits", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "", nil)
			switch {
			case c.err != nil:
				return c.err
			case !reflect.DeepEqual(c.res.Pending, []string{"q-tone"}):
				return fmt.Errorf("pending %v, want [q-tone]", c.res.Pending)
			case len(c.asked) != 1 || c.asked[0].Question != "How should I greet Ada?" ||
				!reflect.DeepEqual(c.asked[0].Options, []string{"formal", "casual"}):
				return fmt.Errorf("asked %+v", c.asked)
			case len(c.res.ContextWrites) != 0 || len(c.sent) != 0 || len(guestLogs(c.res)) != 0:
				return fmt.Errorf("side effects before the answer: ctx %v, sent %v, logs %v", c.res.ContextWrites, c.sent, guestLogs(c.res))
			}
			return nil
		}},
		{"output", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "formal", nil)
			if c.err != nil {
				return c.err
			}
			want := fmt.Sprintf(`{"attempt":1,"count":1,"greeting":"Good day, Ada.","lang":%q,"step":"greet"}`, lang)
			if got := canonical(c.res.Output); got != want {
				return fmt.Errorf("output %s, want %s", got, want)
			}
			if len(c.res.Pending) != 0 {
				return fmt.Errorf("pending %v after the answer", c.res.Pending)
			}
			return nil
		}},
		{"other answer", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "casual", nil)
			if c.err != nil {
				return c.err
			}
			var out struct{ Greeting string }
			_ = json.Unmarshal(c.res.Output, &out)
			if out.Greeting != "Hi, Ada!" {
				return fmt.Errorf("greeting %q", out.Greeting)
			}
			return nil
		}},
		{"ctx read and write", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "formal", ctxMap{"greetings": json.RawMessage("41")})
			if c.err != nil {
				return c.err
			}
			if got := string(c.res.ContextWrites["greetings"]); got != "42" || len(c.res.ContextWrites) != 1 {
				return fmt.Errorf("context writes %v, want greetings=42", c.res.ContextWrites)
			}
			return nil
		}},
		{"log", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "formal", nil)
			if c.err != nil {
				return c.err
			}
			if got := guestLogs(c.res); !reflect.DeepEqual(got, []string{"info greeting Ada (formal)"}) {
				return fmt.Errorf("logs %q", got)
			}
			return nil
		}},
		{"notify", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": "Ada"}, "formal", nil)
			if c.err != nil {
				return c.err
			}
			if len(c.sent) != 1 || c.sent[0].Title != "greet" || c.sent[0].Message != "greeted Ada" || c.sent[0].Priority != 3 {
				return fmt.Errorf("notifications %+v", c.sent)
			}
			return nil
		}},
		{"unicode and escapes", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreet(t, p, map[string]string{"name": name}, "formal", nil)
			if c.err != nil {
				return c.err
			}
			var out struct{ Greeting string }
			if err := json.Unmarshal(c.res.Output, &out); err != nil || out.Greeting != "Good day, "+name+"." {
				return fmt.Errorf("greeting %q (%v) from %s", out.Greeting, err, c.res.Output)
			}
			if len(c.asked) != 1 || c.asked[0].Question != "How should I greet "+name+"?" {
				return fmt.Errorf("asked %+v", c.asked)
			}
			return nil
		}},
		{"http", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreetHTTP(t, p, map[string]string{"name": "Ada", "url": srv.URL + "/" + lang}, "formal", nil, web.Session())
			if c.err != nil {
				return c.err
			}
			var out struct{ Fetched string }
			if err := json.Unmarshal(c.res.Output, &out); err != nil || out.Fetched != "hello from /"+lang+", "+name {
				return fmt.Errorf("fetched %q (%v) from %s", out.Fetched, err, c.res.Output)
			}
			return nil
		}},
		{"http: not granted", func(t *testing.T, lang string, p greetPlugin) error {
			// The kit fails the step with the response's code, leaving the
			// retry to the host (which never retries http_denied).
			return wantGuestError(callGreet(t, p, map[string]string{"name": "Ada", "url": srv.URL}, "formal", nil).err, "http_denied", true)
		}},
		{"exec", func(t *testing.T, lang string, p greetPlugin) error {
			c := callGreetWith(t, p, map[string]string{"name": name, "run": "echo"}, "formal", nil, nil, cmds)
			if c.err != nil {
				return c.err
			}
			var out struct{ Ran string }
			if err := json.Unmarshal(c.res.Output, &out); err != nil || out.Ran != "hello "+name+"\n" {
				return fmt.Errorf("ran %q (%v) from %s", out.Ran, err, c.res.Output)
			}
			return nil
		}},
		{"exec: not granted", func(t *testing.T, lang string, p greetPlugin) error {
			return wantGuestError(callGreetWith(t, p, map[string]string{"name": "Ada", "run": "rm"}, "formal", nil, nil, cmds).err, "exec_denied", true)
		}},
		{"error: missing input", func(t *testing.T, lang string, p greetPlugin) error {
			return wantGuestError(callGreet(t, p, map[string]string{}, "", nil).err, "no_name", false)
		}},
		{"error: retryable", func(t *testing.T, lang string, p greetPlugin) error {
			return wantGuestError(callGreet(t, p, map[string]string{"name": "Ada", "fail": "retry"}, "", nil).err, "flaky", true)
		}},
		{"error: non-retryable", func(t *testing.T, lang string, p greetPlugin) error {
			return wantGuestError(callGreet(t, p, map[string]string{"name": "Ada", "fail": "permanent"}, "", nil).err, "bad_name", false)
		}},
	}
	table := map[string]map[string]string{}
	for _, k := range greetKits {
		table[k.lang] = map[string]string{}
		p := loadGreet(t, h, k.rel)
		for _, c := range checks {
			t.Run(k.lang+"/"+c.name, func(t *testing.T) {
				// Twice: the second call runs in a reset instance where the
				// kit allows it, and must not differ.
				for i := range 2 {
					if err := c.run(t, k.lang, p); err != nil {
						table[k.lang][c.name] = "FAIL"
						t.Fatalf("call %d: %v", i+1, err)
					}
				}
				table[k.lang][c.name] = "ok"
			})
		}
		ok, why := p.Resettable()
		st := p.Stats()
		t.Logf("%s: resettable %v %s; %d calls in %d instances", k.lang, ok, why, st.Calls, st.Instances)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "check")
	for _, k := range greetKits {
		fmt.Fprintf(&b, " %-5s", k.lang)
	}
	for _, c := range checks {
		fmt.Fprintf(&b, "\n%-24s", c.name)
		for _, k := range greetKits {
			fmt.Fprintf(&b, " %-5s", table[k.lang][c.name])
		}
	}
	t.Logf("conformance:\n%s", b.String())
}

func wantGuestError(err error, code string, retryable bool) error {
	var ce *host.CallError
	if !errors.As(err, &ce) || !errors.Is(err, host.ErrPluginFailed) || ce.Guest == nil {
		return fmt.Errorf("err = %v, want a guest error %s", err, code)
	}
	if ce.Guest.Code != code {
		return fmt.Errorf("code %q, want %q (%v)", ce.Guest.Code, code, err)
	}
	if got := ce.Guest.Retryable == nil || *ce.Guest.Retryable; got != retryable {
		return fmt.Errorf("retryable %v, want %v", got, retryable)
	}
	return nil
}

// canonical re-encodes a JSON object with sorted keys.
func canonical(b []byte) string {
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid JSON: " + string(b)
	}
	out, _ := json.Marshal(v) // encoding/json sorts map keys
	return string(out)
}

// TestConformance_Retries runs every language's greet in a workflow with a
// retry policy of three attempts: a retryable error is retried until the
// attempts run out, a non-retryable one runs once; and a step that asks
// waits, then completes with the answer on resume.
func TestConformance_Retries(t *testing.T) {
	for _, k := range greetKits {
		t.Run(k.lang, func(t *testing.T) {
			project := t.TempDir()
			rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: project, CacheDir: cacheDir, Notifier: &notifications{}})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(t.Context())
			plugin := filepath.Join(examples(t), k.rel)
			retry := &manifest.Retry{MaxAttempts: 3, InitialInterval: manifest.Duration(time.Millisecond)}
			for _, tc := range []struct {
				fail     string
				attempts int
			}{{"retry", 3}, {"permanent", 1}} {
				m, err := manifest.New(project, manifest.Workflow{Name: "retry-" + tc.fail}, manifest.Defaults{},
					manifest.Step{ID: "greet", Plugin: plugin, Idempotent: true, Retry: retry,
						Input: map[string]any{"name": "Ada", "fail": tc.fail}})
				if err != nil {
					t.Fatal(err)
				}
				res, err := rt.Run(t.Context(), m, runtime.RunOptions{New: true})
				if err == nil || res == nil {
					t.Fatalf("fail=%s: err %v, want the step to fail", tc.fail, err)
				}
				if got := res.Steps[0].Attempt; got != tc.attempts {
					t.Fatalf("fail=%s: %d attempts, want %d", tc.fail, got, tc.attempts)
				}
			}
			m, err := manifest.New(project, manifest.Workflow{Name: "ask"}, manifest.Defaults{},
				manifest.Step{ID: "greet", Plugin: plugin, Idempotent: true, Input: map[string]any{"name": "Ada"}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := rt.Run(t.Context(), m, runtime.RunOptions{New: true})
			if res == nil || res.Status != state.RunWaiting {
				t.Fatalf("run: %v, want it waiting", err)
			}
			v, err := runtime.OpenView(project, nil)
			if err != nil {
				t.Fatal(err)
			}
			qs, err := v.Questions()
			v.Close()
			if err != nil || len(qs) != 1 || qs[0].Key != "tone" {
				t.Fatalf("questions %+v, %v", qs, err)
			}
			if _, err := runtime.Respond(project, qs[0].ID, "casual"); err != nil {
				t.Fatal(err)
			}
			res, err = rt.Run(t.Context(), m, runtime.RunOptions{}) // continues the waiting run
			if err != nil || res.Status != state.RunCompleted {
				t.Fatalf("resume: %v", err)
			}
			var out struct {
				Greeting string
				Count    int
			}
			_ = json.Unmarshal(res.Steps[0].Output, &out)
			if out.Greeting != "Hi, Ada!" || out.Count != 1 {
				t.Fatalf("output %s", res.Steps[0].Output)
			}
		})
	}
}
