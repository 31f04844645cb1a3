//go:build integration

package tests

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSecrets runs a step granted a secret through the binary: the server
// gets it, the step never does (an echo comes back redacted), and after a
// question, an answer and a resume (the call replayed from the journal)
// neither any file under .12fa/ nor anything the binary printed holds the
// value or its base64. A secret named where it may not go is refused
// before anything is sent; one with no value pauses the run.
func TestSecrets(t *testing.T) {
	const value = "sk-12fa-test-c0ffee-5ecret-value"
	var (
		mu   sync.Mutex
		auth []string
	)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %s (%s)", r.Header.Get("Authorization"), base64.StdEncoding.EncodeToString([]byte(value)))
	})
	manifest := func(dir, input string) string {
		m := fmt.Sprintf(`[workflow]
name = "secrets"
[secrets]
openai = { env = "TWELVEFA_TEST_SECRET" }
[[step]]
id = "fetch"
plugin = %q
input = %s
[step.allow]
hosts = [%q]
private = ["127.0.0.1"]
[step.secrets]
openai = { hosts = [%q], header = "Authorization", value = "Bearer {secret}" }
`, filepath.Join(examples(t), "fetch", "fetch.wasm"), input, s.URL, s.URL)
		p := filepath.Join(dir, "plugin-manifest.toml")
		if err := os.WriteFile(p, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(dir string, env []string, args ...string) string {
		cmd := exec.Command(bin, append([]string{"-C", dir, "--cache-dir", cacheDir}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	withSecret := []string{"TWELVEFA_TEST_SECRET=" + value}

	dir := t.TempDir()
	m := manifest(dir, fmt.Sprintf(`{ ask = "Go on?", requests = [{ url = %q }] }`, s.URL+"/echo"))
	printed := run(dir, withSecret, "run", m)
	printed += respondAll(t, dir, "yes")
	printed += run(dir, withSecret, "resume")
	step, _ := fetchStatus(t, dir)
	if step.Status != "completed" {
		t.Fatalf("%+v\n%s", step, printed)
	}
	if got := fetchedBody(t, step); got != "you sent Bearer [redacted:openai] ([redacted:openai])" {
		t.Errorf("the step got %q", got)
	}
	mu.Lock()
	if len(auth) != 1 || auth[0] != "Bearer "+value {
		t.Errorf("the server got %q, want one request with the secret", auth)
	}
	mu.Unlock()
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"logs"}, {"inputs", "--all"}, {"checkpoints"}} {
		printed += run(dir, nil, args...)
	}
	leaks := []string{value, base64.StdEncoding.EncodeToString([]byte(value)), base64.RawURLEncoding.EncodeToString([]byte(value))}
	for _, leak := range leaks {
		if strings.Contains(printed, leak) {
			t.Errorf("the binary printed %q", leak)
		}
	}
	files := 0
	_ = filepath.WalkDir(filepath.Join(dir, ".12fa"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, _ := os.ReadFile(path)
		for _, leak := range leaks {
			if strings.Contains(string(b), leak) {
				t.Errorf("%s holds %q", path, leak)
			}
		}
		return nil
	})
	if files < 3 {
		t.Errorf("only %d files under .12fa", files)
	}

	before := s.hits.Load()
	dir = t.TempDir()
	m = manifest(dir, fmt.Sprintf(`{ requests = [{ url = %q }] }`, s.URL+"/?key={{secret.openai}}"))
	out := run(dir, withSecret, "run", m)
	if step, _ := fetchStatus(t, dir); step.Cause != "secret_not_granted" || s.hits.Load() != before {
		t.Errorf("a secret in the query: %+v, %d requests\n%s", step, s.hits.Load()-before, out)
	}

	dir = t.TempDir()
	m = manifest(dir, fmt.Sprintf(`{ requests = [{ url = %q }] }`, s.URL+"/"))
	out = run(dir, []string{"TWELVEFA_TEST_SECRET="}, "run", m)
	if step, status := fetchStatus(t, dir); step.Cause != "secret_missing" || status != "paused" || s.hits.Load() != before {
		t.Errorf("no value: run %s, %+v\n%s", status, step, out)
	}
}
