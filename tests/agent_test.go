//go:build integration

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleAgent runs make example-agent's script: a model (the local
// test server) plans a change, the question is answered, the change is
// written and go test passes; the model is asked once, although the step
// that asked it ran twice.
func TestExampleAgent(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command("sh", "plugins/examples/agent/example.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+bin, "AGENT_DIR="+dir, "OPENAI_BASE_URL=", "OPENAI_API_KEY=", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"command  go (", "POST http://127.0.0.1", "(replayed: recorded by an earlier attempt, not sent)",
		"go test: ok", "completed: 3 ran", "the model was asked 1 time(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "work", "greet.go"))
	if !strings.Contains(string(b), "func Farewell") {
		t.Errorf("greet.go was not changed:\n%s", b)
	}
	if strings.Contains(string(out), "sk-local-test-key") {
		t.Error("the key was printed")
	}
}
