//go:build integration

package tests

import (
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
	"testing"
	"time"
)

// ntfyRecorder is a loopback stand-in for an ntfy server.
type ntfyRecorder struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (n *ntfyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	n.mu.Lock()
	n.msgs = append(n.msgs, m)
	n.mu.Unlock()
}

// msg returns the i-th message published.
func (n *ntfyRecorder) msg(i int) map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.msgs[i]
}

func (n *ntfyRecorder) titles() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var t []string
	for _, m := range n.msgs {
		t = append(t, fmt.Sprint(m["title"]))
	}
	return strings.Join(t, " | ")
}

// TestNotify_QuestionsThroughNtfy: a run that asks two questions publishes
// one "Input required" notification with both to ntfy; answered from the
// CLI, the run completes and says so.
func TestNotify_QuestionsThroughNtfy(t *testing.T) {
	rec := &ntfyRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	project := t.TempDir()
	manifest := filepath.Join(project, "ask.toml")
	body := fmt.Sprintf(`[workflow]
name = "release"
[notify]
ntfy_url = %q
topic = "12fa-test"
[[step]]
id = "ask"
plugin = %q
idempotent = true
`, srv.URL, filepath.Join(examples(t), "ask", "ask.wasm"))
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"-C", project, "--cache-dir", cacheDir}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("$ 12fa %s\n%s[exit %d]", strings.Join(args, " "), out, code)
		return string(out), code
	}
	if _, code := run("run", manifest); code != 5 {
		t.Fatalf("exit %d, want 5 (waiting)", code)
	}
	if got := rec.titles(); got != "Run started: release | Input required: release" {
		t.Fatalf("published %q", got)
	}
	input := rec.msg(1)
	msg := fmt.Sprint(input["message"])
	if input["topic"] != "12fa-test" || !strings.Contains(msg, "Deploy to production? [yes/no]") ||
		!strings.Contains(msg, "What should the release be called?") {
		t.Fatalf("input notification %v", input)
	}
	out, _ := run("inputs", "--json")
	var qs struct {
		Questions []struct {
			ID      string   `json:"id"`
			Options []string `json:"options"`
		} `json:"questions"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &qs); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs.Questions {
		answer := "spring-release"
		if len(q.Options) > 0 {
			answer = "yes"
		}
		run("respond", q.ID, answer)
	}
	if _, code := run("resume"); code != 0 {
		t.Fatalf("resume exit %d", code)
	}
	if got := rec.titles(); !strings.HasSuffix(got, "Run completed: release") {
		t.Fatalf("published %q", got)
	}
	for _, m := range rec.msgs {
		b, _ := json.Marshal(m)
		t.Logf("ntfy got: %s", b)
	}
}

// TestNotify_UnreachableServer: with ntfy down, the run completes as usual.
func TestNotify_UnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	project := t.TempDir()
	manifest := filepath.Join(project, "w.toml")
	body := fmt.Sprintf("[workflow]\nname = \"w\"\n[notify]\nntfy_url = \"http://%s\"\ntopic = \"t\"\n[[step]]\nid = \"a\"\nplugin = %q\n",
		addr, filepath.Join(examples(t), "wat", "noop.wasm"))
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "run", manifest).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "completed: 1 ran") {
		t.Fatalf("run with ntfy down: %v\n%s", err, out)
	}
	t.Logf("run with ntfy unreachable took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
}
