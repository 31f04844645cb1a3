//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/12fa/12fa/internal/testutil"
)

// screenshotDir is where the browser test leaves its screenshots, for a
// person to look at: $TWELVEFA_ARTIFACTS, else the system's temporary
// directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TWELVEFA_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "12fa-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startServe starts `12fa serve` on a free loopback port of dir's project
// and returns its URL and what it logs.
func startServe(t *testing.T, dir string, args ...string) (string, func() string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir, "serve"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stderr bytes.Buffer
	cmd.Stderr = lockedWriter{&mu, &stderr}
	logs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return stderr.String()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("12fa serve:\n%s", logs())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("12fa serve said nothing: %v\n%s", err, logs())
	}
	// "12fa serve: http://127.0.0.1:PORT/ (Ctrl-C stops)"
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasPrefix(f[2], "http://127.0.0.1:") {
		t.Fatalf("12fa serve printed %q", line)
	}
	return f[2], logs
}

// TestServe_Browser is the dashboard as a person uses it, in a real
// headless Chromium: the runs page is open when a real run starts and asks
// two questions; the run appears on it live; on the run's page the person
// answers with the form (a button for the yes/no one, a text field for the
// other); the run, driven by `12fa run --wait` in another process, goes
// on and the page shows it completed, with its log. Screenshots of each
// stage are saved and checked to be images.
func TestServe_Browser(t *testing.T) {
	testutil.NeedTool(t, "chromium")
	shell, err := exec.LookPath("chromium-headless-shell")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{"ask/ask.wasm", "effect/effect.wasm"} {
		b, err := os.ReadFile(filepath.Join(examples(t), p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(dir, "plugin-manifest.toml")
	if err := os.WriteFile(manifest, []byte(`[workflow]
name = "release"

[checkpoint]
git = false

[[step]]
id = "build"
plugin = "effect.wasm"
idempotent = true
input = { sleep_ms = 200 }

[[step]]
id = "approve"
plugin = "ask.wasm"
idempotent = true

[[step]]
id = "ship"
plugin = "effect.wasm"
idempotent = true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	url, _ := startServe(t, dir, "--addr", "127.0.0.1:0")

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(shell), chromedp.WindowSize(1280, 900))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	shots := screenshotDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		// A PNG of some size: not a blank answer.
		if len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s: %d bytes, not a PNG of a page", name, len(png))
		}
		p := filepath.Join(shots, "serve-"+name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s: %s (%d bytes)", name, p, len(png))
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	step("open the runs page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("p.empty")))
	// The run starts after the page is open: it must appear by itself.
	run := exec.Command(bin, "-C", dir, "--cache-dir", cacheDir, "run", "--wait", "--timeout", "2m", manifest)
	run.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var runOut bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runOut
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- run.Wait() }()
	defer func() {
		_ = run.Process.Kill()
		if t.Failed() {
			t.Logf("12fa run --wait:\n%s", runOut.String())
		}
	}()
	step("the run appears, waiting, without a reload", chromedp.WaitVisible(chromedp.CSS("table.runs a.badge")))
	shot("1-runs-waiting")

	step("open the run", chromedp.Click(chromedp.CSS("table.runs td a.mono")), chromedp.WaitVisible(chromedp.CSS("form.question")))
	shot("2-run-questions")
	step("answer the yes/no question with its button",
		chromedp.Click(chromedp.CSS(`form.question button[value="yes"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.flash")))
	step("answer the other in its text field",
		chromedp.SendKeys(chromedp.CSS(`form.question input[name="answer"]`), "r1"),
		chromedp.Submit(chromedp.CSS(`form.question input[name="answer"]`)),
		chromedp.WaitVisible(chromedp.CSS("ul.answered")))
	step("the run completes, shown live", chromedp.WaitVisible(chromedp.CSS("h1 .status.s-completed")))
	step("its log has the steps' lines", chromedp.WaitVisible(chromedp.CSS("#log li:nth-child(8)")))
	logText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#log")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logText, "deploy=yes name=r1") || !strings.Contains(logText, "run_completed") {
		t.Errorf("the page's log: %q, want the step's line with the answers and the run's end", logText)
	}
	shot("3-run-completed")
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("12fa run --wait: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("12fa run --wait did not end")
	}
	step("the questions page", chromedp.Navigate(url+"inputs"), chromedp.WaitVisible(chromedp.CSS("table.answered")))
	shot("4-questions-answered")
}

// TestNotify_AnswerFromThePhone: with `12fa serve --public-url`, a run's
// input-required notification reaches ntfy with answer buttons; the
// phone's tap on one (a cross-origin POST of its signed link, as ntfy's
// app makes it) answers the question through serve, once; the other
// question is answered from the CLI and the run completes.
func TestNotify_AnswerFromThePhone(t *testing.T) {
	rec := &ntfyRecorder{}
	ntfy := httptest.NewServer(rec)
	defer ntfy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "ask.toml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf("[workflow]\nname = \"release\"\n[notify]\nntfy_url = %q\ntopic = \"12fa-test\"\n[checkpoint]\ngit = false\n"+
		"[[step]]\nid = \"ask\"\nplugin = %q\nidempotent = true\n", ntfy.URL, filepath.Join(examples(t), "ask", "ask.wasm"))), 0o644); err != nil {
		t.Fatal(err)
	}
	serveURL, serveLog := startServe(t, dir, "--log-level", "info", "--addr", addr, "--public-url", "http://"+addr)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir}, args...)...)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	cli("run", manifest)
	var actions []map[string]any
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && actions == nil; time.Sleep(20 * time.Millisecond) {
		rec.mu.Lock()
		for _, m := range rec.msgs {
			if strings.HasPrefix(fmt.Sprint(m["title"]), "Input required") {
				for _, a := range m["actions"].([]any) {
					actions = append(actions, a.(map[string]any))
				}
			}
		}
		rec.mu.Unlock()
	}
	if len(actions) != 3 || actions[0]["label"] != "yes" || actions[0]["action"] != "http" || actions[0]["method"] != "POST" || actions[2]["action"] != "view" {
		t.Fatalf("the notification's actions: %v (published: %s)", actions, rec.titles())
	}
	tap := func(a map[string]any) (int, string) {
		req, _ := http.NewRequest(fmt.Sprint(a["method"]), fmt.Sprint(a["url"]), nil)
		req.Header.Set("Origin", "https://ntfy.sh")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := tap(actions[0]); code != http.StatusOK {
		t.Fatalf("the phone's tap on yes: %d %s", code, body)
	}
	if code, _ := tap(actions[0]); code != http.StatusConflict {
		t.Errorf("the same tap again: %d, want 409", code)
	}
	if code, _ := tap(actions[1]); code != http.StatusConflict {
		t.Errorf("no after yes: %d, want 409", code)
	}
	out := cli("inputs", "--json")
	var doc struct {
		Questions []struct{ ID, Key, Status, Answer, Run string } `json:"questions"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inputs --json: %v\n%s", err, out)
	}
	run := ""
	for _, q := range doc.Questions {
		if q.Key == "deploy" {
			t.Fatalf("the deploy question is still pending after the tap: %+v", q)
		}
		cli("respond", q.ID, "r1")
		run = q.Run
	}
	// The run page's Resume button: serve starts `12fa resume` in a
	// process of its own.
	req, _ := http.NewRequest(http.MethodPost, serveURL+"runs/"+run+"/resume", nil)
	req.Header.Set("Origin", strings.TrimSuffix(serveURL, "/"))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the resume button: %s", resp.Status)
	}
	var out2 string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if out2 = cli("status", "--json", run); strings.Contains(out2, `"status": "completed"`) {
			break
		}
	}
	if !strings.Contains(out2, `"status": "completed"`) || !strings.Contains(out2, `"deploy": true`) {
		t.Errorf("after the resume button, the run is not completed with the phone's answer:\n%s", out2)
	}
	// The resume serve started ends by itself (before the project goes).
	for end := time.Now().Add(30 * time.Second); !strings.Contains(serveLog(), "resume ended"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the resume serve started did not end:\n%s", serveLog())
		}
	}
	if strings.Contains(serveLog(), "[WARN]  12fa.serve: resume ended") {
		t.Errorf("the resume failed:\n%s", serveLog())
	}
}
