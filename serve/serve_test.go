package serve_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/internal/testutil"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/notify"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/serve"
	"github.com/12fa/12fa/state"
)

// hostile is what a step may write to fool a person: markup, an attribute
// break-out, a right-to-left override that reverses what follows, and a
// terminal escape.
const hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)> \u202egnp.exe\x1b[31m"

// waitingProject runs a real workflow until its step waits for a person:
// the ask plugin, asking with the hostile text (and logging it).
func waitingProject(t *testing.T) (dir, run string) {
	dir, run, _ = waitingRun(t)
	return dir, run
}

func waitingRun(t *testing.T) (dir, run string, m *manifest.Manifest) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	var err error
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: dir, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	no := false
	m, err = manifest.New(testutil.ExamplePath(t, ""), manifest.Workflow{Name: "release"}, manifest.Defaults{},
		manifest.Step{ID: "build", Plugin: "effect/effect.wasm", Idempotent: true},
		manifest.Step{ID: "approve", Plugin: "ask/ask.wasm", Idempotent: true, Config: map[string]string{"question": hostile}},
		manifest.Step{ID: "ship", Plugin: "effect/effect.wasm", Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Checkpoint.Git = &no
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	if !errors.Is(err, runtime.ErrWaiting) {
		t.Fatalf("run: %v, want it waiting", err)
	}
	return dir, res.RunID, m
}

func newServer(t *testing.T, dir string, mod func(*serve.Config)) *httptest.Server {
	t.Helper()
	cfg := serve.Config{ProjectDir: dir, Loopback: true, Poll: 20 * time.Millisecond,
		Open: func() (*runtime.View, func(), error) {
			v, err := runtime.OpenView(dir, nil)
			if err != nil {
				return nil, nil, err
			}
			return v, func() { _ = v.Close() }, nil
		}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServe_GuestTextEscaped: what a step wrote (its question, its log
// line) is shown as text on every page: no markup of its own, its
// invisible and control characters as visible escapes; and every page
// carries a policy that runs no script but the server's own.
func TestServe_GuestTextEscaped(t *testing.T) {
	dir, run := waitingProject(t)
	srv := newServer(t, dir, nil)
	for _, path := range []string{"/", "/runs/" + run, "/inputs"} {
		resp, body := get(t, nil, srv.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "\u202e", "\x1b"} {
			if strings.Contains(body, raw) {
				t.Errorf("GET %s: the page holds the step's %q unescaped", path, raw)
			}
		}
		if path != "/" {
			if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, `\u202egnp.exe\x1b[31m`) {
				t.Errorf("GET %s: the question is not shown as the text it is:\n%s", path, body)
			}
		}
	}
	// The log line the step wrote, as the live stream sends it: made
	// visible, then set as text by the page's script.
	ev := readEvents(t, srv.URL+"/events?run="+url.QueryEscape(run), "", func(evs []event) bool {
		return len(evs) > 0 && strings.Contains(evs[len(evs)-1].data, "gnp.exe")
	})
	last := ev[len(ev)-1].data
	if strings.Contains(last, "\u202e") || strings.Contains(last, "<script>") || !strings.Contains(last, `\\u202egnp.exe`) {
		t.Errorf("the log line's event: %s", last)
	}
}

type event struct{ id, name, data string }

// readEvents reads server-sent events from u (resuming after lastID when
// set) until done says so, and returns them.
func readEvents(t *testing.T, u, lastID string, done func([]event) bool) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var evs []event
	var cur event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				evs = append(evs, cur)
				if done(evs) {
					return evs
				}
			}
			cur = event{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	t.Fatalf("the stream ended (%v) after %d events: %+v", sc.Err(), len(evs), evs)
	return nil
}

// TestServe_EventsResume: a stream resumed with the Last-Event-ID it was
// given sends only what came after: the answer's entries, not the
// run's first ones again.
func TestServe_EventsResume(t *testing.T) {
	dir, run, m := waitingRun(t)
	srv := newServer(t, dir, nil)
	u := srv.URL + "/events?run=" + url.QueryEscape(run)
	first := readEvents(t, u, "", func(evs []event) bool { return evs[len(evs)-1].id != "" })
	if first[0].name != "log" || !strings.Contains(first[0].data, "run_started") {
		t.Fatalf("the first event %+v, want the run's start", first[0])
	}
	id := first[len(first)-1].id
	// More of the run's log: it goes on once answered.
	v, err := runtime.OpenView(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs, _ := v.Questions()
	v.Close()
	for _, q := range qs {
		a := "r1"
		if len(q.Options) > 0 {
			a = q.Options[0]
		}
		v, _ := runtime.OpenView(dir, nil)
		if _, err := v.Respond(q.ID, a); err != nil {
			t.Fatal(err)
		}
		v.Close()
	}
	resumeProject(t, dir, run, m)
	again := readEvents(t, u, id, func(evs []event) bool { return strings.Contains(evs[len(evs)-1].data, "run_completed") })
	for _, e := range again {
		if strings.Contains(e.data, "run_started") {
			t.Errorf("resumed after %s, the stream sent the run's start again: %+v", id, e)
		}
	}
	if !strings.Contains(again[0].data, "run_resumed") {
		t.Errorf("resumed after %s, the first event %+v, want the resume", id, again[0])
	}
	if _, body := get(t, nil, u, "Last-Event-ID", "nonsense"); !strings.Contains(body, "not a position") {
		t.Errorf("a Last-Event-ID that is no position: %s", body)
	}
}

func resumeProject(t *testing.T, dir, run string, m *manifest.Manifest) {
	t.Helper()
	ctx := context.Background()
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: dir, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	res, err := rt.Run(ctx, m, runtime.RunOptions{RunID: run})
	if err != nil || res.Status != state.RunCompleted {
		t.Fatalf("resume: %+v, %v", res, err)
	}
}

// TestServe_AnswerForm: the question's form answers it with the checks of
// `12fa respond` (an option it does not offer is refused, a second answer
// too), then goes back to the run's page, which shows it answered; a
// cross-site post of the same form is refused and answers nothing.
func TestServe_AnswerForm(t *testing.T) {
	dir, run := waitingProject(t)
	srv := newServer(t, dir, nil)
	v, _ := runtime.OpenView(dir, nil)
	qs, _ := v.Questions()
	v.Close()
	var deploy string
	for _, q := range qs {
		if q.Key == "deploy" {
			deploy = q.ID
		}
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/inputs/"+deploy, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// From another site (a page elsewhere posting the form): refused.
	if resp, _ := post(url.Values{"choice": {"yes"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %s, want 403", resp.Status)
	}
	if resp, body := post(url.Values{"choice": {"maybe"}, "back": {"run"}}); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "maybe") {
		t.Fatalf("an answer the question does not offer: %s\n%s", resp.Status, body)
	}
	resp, _ := post(url.Values{"choice": {"yes"}, "back": {"run"}}, "Origin", srv.URL, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/runs/"+run) {
		t.Fatalf("answer: %s to %q, want 303 to the run", resp.Status, resp.Header.Get("Location"))
	}
	if resp, body := post(url.Values{"choice": {"no"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a second answer: %s\n%s", resp.Status, body)
	}
	_, body := get(t, nil, srv.URL+resp.Header.Get("Location"))
	if !strings.Contains(body, `id="answered-`+deploy+`"`) || !strings.Contains(body, "answered "+deploy) {
		t.Errorf("the run's page after the answer does not show it answered:\n%s", body)
	}
}

// TestServe_Access: on loopback, a request naming another host (DNS
// rebinding) is refused; with a token, a request without it is refused,
// one with it as a bearer is served, and a link carrying it once sets a
// cookie that serves the next requests.
func TestServe_Access(t *testing.T) {
	dir, _ := waitingProject(t)
	srv := newServer(t, dir, nil)
	if resp, _ := get(t, nil, srv.URL+"/", "Host", "attacker.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host on loopback: %s, want 403", resp.Status)
	}
	if resp, _ := get(t, nil, srv.URL+"/", "Host", "localhost:8812"); resp.StatusCode != http.StatusOK {
		t.Errorf("Host localhost: %s, want 200", resp.Status)
	}
	const token = "s3cret-token-of-some-length"
	open := newServer(t, dir, func(c *serve.Config) { c.Loopback, c.Token = false, token })
	for _, path := range []string{"/", "/inputs", "/events", "/static/app.js"} {
		if resp, _ := get(t, nil, open.URL+path); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %s, want 401", path, resp.Status)
		}
	}
	if resp, _ := get(t, nil, open.URL+"/", "Authorization", "Bearer wrong-token-of-some-length"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %s, want 401", resp.Status)
	}
	if resp, _ := get(t, nil, open.URL+"/", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
		t.Errorf("the token as a bearer: %s, want 200", resp.Status)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, _ := get(t, c, open.URL+"/inputs?token="+token)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Has("token") {
		t.Fatalf("the link with the token: %s at %s, want the page without the token in its URL", resp.Status, resp.Request.URL)
	}
	if resp, _ := get(t, c, open.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("the next request, with the cookie: %s", resp.Status)
	}
}

// TestServe_ResumeButton: a run that can go on shows the button, and it
// starts the resume it names (the CLI's starts `12fa resume` as a process
// of its own).
func TestServe_ResumeButton(t *testing.T) {
	dir, run := waitingProject(t)
	v, _ := runtime.OpenView(dir, nil)
	qs, _ := v.Questions()
	for _, q := range qs {
		a := "r1"
		if len(q.Options) > 0 {
			a = q.Options[0]
		}
		if _, err := v.Respond(q.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	resumed := make(chan string, 1)
	srv := newServer(t, dir, func(c *serve.Config) {
		c.Resume = func(id string, retry bool) error {
			resumed <- id
			return nil
		}
	})
	if _, body := get(t, nil, srv.URL+"/runs/"+run); !strings.Contains(body, `action="/runs/`+run+`/resume"`) {
		t.Fatalf("a run whose questions are answered shows no resume button:\n%s", body)
	}
	resp, err := http.PostForm(srv.URL+"/runs/"+run+"/resume", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("resume: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case id := <-resumed:
		if id != run {
			t.Errorf("resumed %s, want %s", id, run)
		}
	default:
		t.Error("the button resumed nothing")
	}
}

// cacheDir is the package's compile cache: each plugin compiles once.
var cacheDir string

func TestMain(m *testing.M) { os.Exit(testutil.MainWithTempDir(m, "12fa-serve-cache", &cacheDir)) }

// TestServe_LongRun: a run of many steps shows a window of them (where it
// stands: the last for a completed run) with links to the others, and its
// live log starts with its latest entries, saying how many came before.
func TestServe_LongRun(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	rt, err := runtime.New(ctx, runtime.Config{ProjectDir: dir, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	no := false
	var steps []manifest.Step
	for i := range 450 {
		steps = append(steps, manifest.Step{ID: "s" + strconv.Itoa(i+1), Plugin: "wat/noop.wasm", Idempotent: true})
	}
	m, err := manifest.New(testutil.ExamplePath(t, ""), manifest.Workflow{Name: "long"}, manifest.Defaults{}, steps...)
	if err != nil {
		t.Fatal(err)
	}
	m.Checkpoint.Git = &no
	res, err := rt.Run(ctx, m, runtime.RunOptions{})
	rt.Close(ctx)
	if err != nil || res.Status != state.RunCompleted {
		t.Fatalf("run: %v", err)
	}
	srv := newServer(t, dir, nil)
	_, body := get(t, nil, srv.URL+"/runs/"+res.RunID)
	if !strings.Contains(body, "401–450 of 450") || strings.Contains(body, `id="step-s400"`) || !strings.Contains(body, `id="step-s450"`) {
		t.Fatalf("the page of a 450-step run does not show its last 50 steps alone:\n%s", body)
	}
	if !strings.Contains(body, "?from=201#steps") {
		t.Errorf("no link to the earlier steps")
	}
	_, body = get(t, nil, srv.URL+"/runs/"+res.RunID+"?from=201")
	if !strings.Contains(body, "201–400 of 450") || !strings.Contains(body, `id="step-s201"`) || strings.Contains(body, `id="step-s401"`) {
		t.Errorf("?from=201: not steps 201 to 400")
	}
	evs := readEvents(t, srv.URL+"/events?run="+res.RunID, "", func(evs []event) bool { return evs[len(evs)-1].id != "" })
	if len(evs) != 501 || !strings.Contains(evs[0].data, "earlier entries") || !strings.Contains(evs[len(evs)-1].data, "run_completed") {
		t.Errorf("the log stream starts with %d events, the first %s", len(evs), evs[0].data)
	}
}

// TestServe_AnswerLinks: a notification's answer button, tapped as ntfy's
// app does it (a POST from another origin, no cookie, no token), answers
// its question once; the same link again, the other option's link after
// it, a forged link and an expired one are refused, and none answers.
func TestServe_AnswerLinks(t *testing.T) {
	dir, _ := waitingProject(t)
	links := &notify.AnswerLinks{Key: []byte("0123456789abcdef0123456789abcdef")}
	srv := newServer(t, dir, func(c *serve.Config) { c.Links, c.Token, c.Loopback = links, "a-token-the-phone-does-not-have", false })
	links.Base = srv.URL
	v, _ := runtime.OpenView(dir, nil)
	qs, _ := v.Questions()
	v.Close()
	var nq []notify.Question
	for _, q := range qs {
		nq = append(nq, notify.Question{ID: q.ID, Options: q.Options, Expires: q.ExpiresAt})
	}
	acts := links.Actions(nq, time.Now())
	if len(acts) != 3 || acts[0].Label != "yes" || acts[1].Label != "no" || acts[2].Action != "view" {
		t.Fatalf("actions %+v", acts)
	}
	tap := func(link string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, link, nil)
		req.Header.Set("Origin", "https://ntfy.sh")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Access-Control-Allow-Origin")
	}
	answered := func() string {
		v, _ := runtime.OpenView(dir, nil)
		defer v.Close()
		qs, _ := v.Questions()
		for _, q := range qs {
			if len(q.Options) > 0 {
				return q.Status + " " + q.Answer
			}
		}
		return ""
	}
	// Forged: yes's signature on no; expired: a link that ended.
	u, _ := url.Parse(acts[0].URL)
	forged := u.Query()
	forged.Set("v", base64.RawURLEncoding.EncodeToString([]byte("no")))
	u.RawQuery = forged.Encode()
	if code, body, _ := tap(u.String()); code != http.StatusForbidden {
		t.Errorf("a forged link: %d %s", code, body)
	}
	if code, body, _ := tap(links.Link(nq[0].ID, "yes", time.Now().Add(-time.Second))); code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Errorf("an expired link: %d %s", code, body)
	}
	if got := answered(); got != "pending " {
		t.Fatalf("after refused links the question is %q", got)
	}
	code, body, cors := tap(acts[0].URL)
	if code != http.StatusOK || cors != "*" {
		t.Fatalf("the yes button: %d %s (Access-Control-Allow-Origin %q)", code, body, cors)
	}
	if got := answered(); got != "answered yes" {
		t.Fatalf("after the tap the question is %q", got)
	}
	if code, body, _ := tap(acts[0].URL); code != http.StatusConflict {
		t.Errorf("the same link again: %d %s", code, body)
	}
	if code, body, _ := tap(acts[1].URL); code != http.StatusConflict {
		t.Errorf("the no button after yes: %d %s", code, body)
	}
	if got := answered(); got != "answered yes" {
		t.Errorf("at the end the question is %q", got)
	}
	// The rest of the dashboard still wants the token.
	if resp, _ := get(t, nil, srv.URL+"/inputs"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the questions page without the token: %s", resp.Status)
	}
}

// TestServe_ChangeSincePage: a page's live events start from what the
// page showed, so that a change between the page and its stream (the run
// going on right after an answer) is sent at once, not missed.
func TestServe_ChangeSincePage(t *testing.T) {
	dir, run := waitingProject(t)
	srv := newServer(t, dir, nil)
	_, body := get(t, nil, srv.URL+"/runs/"+run)
	i := strings.Index(body, `data-live="`)
	if i < 0 {
		t.Fatal("the run page follows no events")
	}
	live := html.UnescapeString(body[i+len(`data-live="`):][:strings.Index(body[i+len(`data-live="`):], `"`)])
	if !strings.Contains(live, "&v=") {
		t.Fatalf("the page's events URL %q does not say what it showed", live)
	}
	v, _ := runtime.OpenView(dir, nil)
	qs, _ := v.Questions()
	answer := "r1"
	if len(qs[0].Options) > 0 {
		answer = qs[0].Options[0]
	}
	if _, err := v.Respond(qs[0].ID, answer); err != nil {
		t.Fatal(err)
	}
	v.Close()
	evs := readEvents(t, srv.URL+live, "", func(evs []event) bool { return evs[len(evs)-1].name == "change" })
	if evs[len(evs)-1].name != "change" {
		t.Fatal("no change event")
	}
	// Unchanged since the page: no change at first.
	_, body = get(t, nil, srv.URL+"/runs/"+run)
	i = strings.Index(body, `data-live="`)
	live = html.UnescapeString(body[i+len(`data-live="`):][:strings.Index(body[i+len(`data-live="`):], `"`)])
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+live, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "event: change") {
		t.Errorf("a change event for a page that is up to date:\n%s", b)
	}
}

// TestServe_FlashIsOurs: the message a redirect shows comes from a fixed
// list; a link carrying words of its own shows none of them.
func TestServe_FlashIsOurs(t *testing.T) {
	dir, run := waitingProject(t)
	srv := newServer(t, dir, nil)
	_, body := get(t, nil, srv.URL+"/runs/"+run+"?done="+url.QueryEscape("answered q-0123456789"))
	if !strings.Contains(body, `<p class="flash" role="status">answered q-0123456789</p>`) {
		t.Errorf("the answer's own message is not shown")
	}
	_, body = get(t, nil, srv.URL+"/inputs?done="+url.QueryEscape("Your session expired: log in at evil.example"))
	if strings.Contains(body, "evil.example") {
		t.Errorf("a crafted link put its words on the page")
	}
}
