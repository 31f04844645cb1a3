package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/inputs"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// fakeNotifier records notifications.
type fakeNotifier struct {
	mu   sync.Mutex
	sent []abi.Notification
}

func (f *fakeNotifier) Notify(_ context.Context, n abi.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, n)
	return nil
}

func (f *fakeNotifier) titles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.sent {
		out = append(out, n.Title)
	}
	return out
}

var _ runtime.Notifier = (*fakeNotifier)(nil)

// TestRuntime_Questions_OneNotification: a step asks two questions; the run
// waits and sends one notification naming both; answered, the run goes on
// and completes, and the plugin's own notification goes out too.
func TestRuntime_Questions_OneNotification(t *testing.T) {
	f := newFixture(t)
	fn := &fakeNotifier{}
	open := func() *runtime.Runtime {
		rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: f.project, CacheDir: f.cache, Notifier: fn})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	m := f.manifest(effect("first", true, map[string]any{"notify": "hello from a plugin"}),
		manifest.Step{ID: "ask", Plugin: "ask.wasm", Idempotent: true})
	rt := open()
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	rt.Close(t.Context())
	if res == nil || res.Status != state.RunWaiting || !strings.Contains(err.Error(), "waiting for answers") {
		t.Fatalf("run: %v", err)
	}
	if got := strings.Join(fn.titles(), "|"); got != "Run started: test|first|Input required: test" {
		t.Fatalf("notifications %q", got)
	}
	msg := fn.sent[2].Message
	if !strings.Contains(msg, "Deploy to production? [yes/no]") || !strings.Contains(msg, "What should the release be called?") {
		t.Fatalf("input notification: %q", msg)
	}
	qs, err := f.view().Questions()
	if err != nil || len(qs) != 2 {
		t.Fatalf("questions %v %v", qs, err)
	}
	for _, q := range qs {
		answer := "v2"
		if len(q.Options) > 0 {
			answer = "no"
		}
		if _, err := runtime.Respond(f.project, q.ID, answer); err != nil {
			t.Fatal(err)
		}
	}
	rt = open()
	defer rt.Close(t.Context())
	res, err = rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output("ask")) != `{"deploy":false,"release":"v2"}` {
		t.Fatalf("ask output %s", res.Output("ask"))
	}
	if titles := fn.titles(); titles[len(titles)-1] != "Run completed: test" {
		t.Fatalf("notifications %q", titles)
	}
}

// TestRuntime_Run_Wait: with Wait, Run waits for the answers (given here
// as another process would) and completes the run itself.
func TestRuntime_Run_Wait(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	m := f.manifest(manifest.Step{ID: "ask", Plugin: "ask.wasm", Idempotent: true})
	go func() {
		for {
			qs, _ := f.view().Questions()
			if len(qs) == 2 {
				for _, q := range qs {
					answer := "r1"
					if len(q.Options) > 0 {
						answer = "yes"
					}
					_, _ = runtime.Respond(f.project, q.ID, answer)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{Wait: true, WaitTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunCompleted || string(res.Output("ask")) != `{"deploy":true,"release":"r1"}` {
		t.Fatalf("run %s, output %s", res.Status, res.Output("ask"))
	}
}

// TestRuntime_Question_ExpiresWithoutDefault: a question whose timeout
// passes with no answer and no default fails the step (input_timeout).
func TestRuntime_Question_ExpiresWithoutDefault(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	m := f.manifest(manifest.Step{ID: "ask", Plugin: "ask.wasm", Idempotent: true, OnFailure: manifest.OnFailureFail,
		Config: map[string]string{"timeout": "200ms"}})
	if _, err := rt.Run(t.Context(), m, runtime.RunOptions{}); !errors.Is(err, runtime.ErrWaiting) {
		t.Fatalf("first run: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	_, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	var se *runtime.StepError
	if !errors.As(err, &se) || se.Cause != "input_timeout" {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestRuntime_UpfrontInputs: [[input]] questions are asked together before
// the first step, with one notification; answered, every step gets them.
func TestRuntime_UpfrontInputs(t *testing.T) {
	f := newFixture(t)
	fn := &fakeNotifier{}
	rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: f.project, CacheDir: f.cache, Notifier: fn})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(t.Context())
	m := f.manifest(effect("a", true, nil), effect("b", true, nil))
	m.Inputs = []manifest.Input{
		{Key: "target", Question: "Which environment?", Options: []string{"staging", "prod"}},
		{Key: "ticket", Question: "Ticket number?"},
	}
	_, err = rt.Run(t.Context(), m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrWaiting) || len(f.ran()) != 0 {
		t.Fatalf("err = %v (no step may run before the answers)", err)
	}
	if got := strings.Join(fn.titles(), "|"); !strings.HasSuffix(got, "Input required: test") || strings.Count(got, "Input required") != 1 {
		t.Fatalf("notifications %q", got)
	}
	qs, _ := f.view().Questions()
	for _, q := range qs {
		answer := "T-42"
		if len(q.Options) > 0 {
			answer = "prod"
		}
		if _, err := runtime.Respond(f.project, q.ID, answer); err != nil {
			t.Fatal(err)
		}
	}
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Inputs map[string]string }
	if err := json.Unmarshal(res.Output("b"), &out); err != nil || out.Inputs["target"] != "prod" || out.Inputs["ticket"] != "T-42" {
		t.Fatalf("step b got inputs %v (%s)", out.Inputs, res.Output("b"))
	}
}

// TestRuntime_WaitForResponse: WaitForResponse returns a question once
// another process (here `Respond`, as `12fa respond` does) answers it, and
// gives up at its timeout for one nobody answers.
func TestRuntime_WaitForResponse(t *testing.T) {
	f := newFixture(t)
	rt := f.open()
	defer rt.Close(t.Context())
	res, err := rt.Run(t.Context(), f.manifest(manifest.Step{ID: "ask", Plugin: "ask.wasm", Idempotent: true}), runtime.RunOptions{})
	if res == nil || res.Status != state.RunWaiting {
		t.Fatalf("run: %v, want it waiting", err)
	}
	qs, err := f.view().Questions()
	if err != nil || len(qs) != 2 {
		t.Fatalf("questions %v, %v", qs, err)
	}
	// Unanswered: the wait ends at its timeout.
	start := time.Now()
	if _, err := rt.WaitForResponse(t.Context(), qs[0].ID, 100*time.Millisecond); err == nil {
		t.Fatal("WaitForResponse returned for a question nobody answered")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("gave up after %s, before its timeout", d)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		if _, err := runtime.Respond(f.project, qs[1].ID, "spring"); err != nil {
			t.Error(err)
		}
	}()
	q, err := rt.WaitForResponse(t.Context(), qs[1].ID, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != qs[1].ID || q.Status != inputs.Answered || q.Answer != "spring" || q.AnsweredBy != "person" {
		t.Fatalf("answered question %+v", q)
	}
}

// TestRuntime_AnswerButtons: with answer links on, the input-required
// notification carries ntfy's buttons for the questions (at most three:
// here yes, no and a link to the page for the free-text one), and each
// button's link verifies for its answer.
func TestRuntime_AnswerButtons(t *testing.T) {
	f := newFixture(t)
	fn := &fakeNotifier{}
	links := &notify.AnswerLinks{Base: "https://12fa.example", Key: []byte("0123456789abcdef0123456789abcdef")}
	rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: f.project, CacheDir: f.cache, Notifier: fn, AnswerLinks: links})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(t.Context())
	if _, err := rt.Run(t.Context(), f.manifest(manifest.Step{ID: "ask", Plugin: "ask.wasm", Idempotent: true}), runtime.RunOptions{}); !errors.Is(err, runtime.ErrWaiting) {
		t.Fatalf("run: %v", err)
	}
	var n abi.Notification
	for _, s := range fn.sent {
		if strings.HasPrefix(s.Title, "Input required") {
			n = s
		}
	}
	if len(n.Actions) != 3 || n.Actions[0].Label != "yes" || n.Actions[1].Label != "no" || n.Actions[2].URL != "https://12fa.example/inputs" {
		t.Fatalf("actions %+v", n.Actions)
	}
	u, err := url.Parse(n.Actions[1].URL)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.PathUnescape(strings.TrimPrefix(u.Path, "/a/"))
	if answer, err := links.Verify(id, u.Query(), time.Now()); err != nil || answer != "no" {
		t.Errorf("the no button's link: %q, %v", answer, err)
	}
}
