//go:build integration

package tests

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/12fa/12fa/internal/pgtest"
)

// TestCLI_StoreOnPostgres: `12fa --store postgres://… run` keeps the run
// in PostgreSQL (nothing of it in .12fa/'s journal), and `status` through
// the same --store (or $TWELVEFA_STORE) lists it completed, the project's
// own store has none, and a resume replays it from the database.
func TestCLI_StoreOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	project := t.TempDir()
	manifest := writeManifest(t, project, 3)
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-C", project, "--cache-dir", cacheDir}, args...)...)
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("12fa %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run(nil, "--store", url, "run", manifest)
	if !strings.Contains(out, "completed: 3 ran") {
		t.Fatalf("run:\n%s", out)
	}
	status := run([]string{"TWELVEFA_STORE=" + url}, "status", "--json")
	var doc struct {
		Runs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Steps  []struct {
				Status string `json:"status"`
			} `json:"steps"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(status), &doc); err != nil {
		t.Fatalf("status --json: %v\n%s", err, status)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].Status != "completed" || len(doc.Runs[0].Steps) != 3 {
		t.Fatalf("status --json through the database: %s", status)
	}
	// The file store of the project holds no run.
	if local := run(nil, "status"); !strings.Contains(local, "no runs yet") {
		t.Fatalf("the project's own store has runs:\n%s", local)
	}
	again := run(nil, "--store", url, "resume", doc.Runs[0].ID)
	if !strings.Contains(again, "3 replayed") {
		t.Fatalf("resume through the database:\n%s", again)
	}
}
