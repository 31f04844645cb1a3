//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/12fa/12fa/internal/pgtest"
	"github.com/12fa/12fa/pgstore"
)

// TestCLI_StoreOnPostgres: `12fa --store postgres://… run` keeps the run
// in PostgreSQL (nothing of it in .12fa/'s journal), and `status` through
// the same --store (or $TWELVEFA_STORE) lists it completed, the project's
// own store has none, a resume replays it from the database, and export
// writes its journal, which a file store reads as the same run.
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
	if out := run(nil, "--store", url, "store", "migrate"); !strings.Contains(out, fmt.Sprintf("schema at version %d", pgstore.SchemaVersion)) {
		t.Fatalf("store migrate: %s", out)
	}
	// export writes the run's journal; in another project's .12fa/ it
	// reads as the same run.
	journal := run(nil, "--store", url, "export", doc.Runs[0].ID)
	other := t.TempDir()
	if out, err := exec.Command(bin, "-C", other, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(other, ".12fa", "journal.jsonl"), []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := exec.Command(bin, "-C", other, "status", doc.Runs[0].ID).CombinedOutput()
	if err != nil || !strings.Contains(string(st), "completed  3/3") {
		t.Fatalf("the exported run in a file store: %v\n%s", err, st)
	}
}
