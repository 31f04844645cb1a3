//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/12fa/12fa/internal/layout"
	"github.com/12fa/12fa/manifest"
	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// pruneStore builds a project with finished runs and paused ones.
func pruneStore(t *testing.T, finished, paused int) string {
	t.Helper()
	project := t.TempDir()
	rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: project, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	effect := filepath.Join(examples(t), "effect", "effect.wasm")
	ok, err := manifest.New(project, manifest.Workflow{Name: "done"}, manifest.Defaults{},
		manifest.Step{ID: "a", Plugin: effect, Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := manifest.New(project, manifest.Workflow{Name: "stuck"}, manifest.Defaults{},
		manifest.Step{ID: "a", Plugin: effect, Idempotent: true, Input: map[string]any{"fail_until_attempt": 9},
			Retry: &manifest.Retry{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]*manifest.Manifest, finished+paused)
	every := (finished + paused) / paused
	for i := range ms {
		ms[i] = ok
		if i%every == every/2 {
			ms[i] = stuck // spread among the finished ones
		}
	}
	_, errs := rt.RunAll(t.Context(), ms, runtime.RunOptions{New: true}, 16)
	for i, err := range errs {
		if err != nil && ms[i] == ok {
			t.Fatal(err)
		}
	}
	if err := rt.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return project
}

// storeRuns reads every run of a project through a read-only view: each
// one listed must read.
func storeRuns(t *testing.T, project string) map[string]string {
	t.Helper()
	v, err := runtime.OpenView(project, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	infos, err := v.Runs(state.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, info := range infos {
		r, err := v.Run(info.ID)
		if err != nil {
			t.Fatalf("run %s is listed but does not read: %v", info.ID, err)
		}
		b, _ := json.Marshal(r)
		out[info.ID] = string(b)
	}
	return out
}

// TestPrune_KilledMidway: `12fa prune` is killed with SIGKILL at random
// moments of its work on copies of one store. After each kill every run
// listed reads, the next 12fa process finishes the prune, and the end is
// the same as an uninterrupted prune: the kept runs byte for byte as they
// were, the others gone with their files.
func TestPrune_KilledMidway(t *testing.T) {
	const finished, paused, keep = 1500, 5, 100
	template := pruneStore(t, finished, paused)
	before := storeRuns(t, template)
	if len(before) != finished+paused {
		t.Fatalf("%d runs in the template store, want %d", len(before), finished+paused)
	}
	v, err := runtime.OpenView(template, nil)
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := v.Runs(state.ListOptions{Status: []state.RunStatus{state.RunCompleted}, Limit: keep})
	v.Close()
	want := map[string]bool{}
	for _, info := range infos {
		want[info.ID] = true
	}
	for id, doc := range before {
		if strings.Contains(doc, `"status":"paused"`) {
			want[id] = true
		}
	}
	if len(want) != keep+paused {
		t.Fatalf("%d runs to keep, want %d", len(want), keep+paused)
	}
	// startPrune starts `12fa prune` on a copy of the template store.
	startPrune := func() (project string, cmd *exec.Cmd) {
		project = t.TempDir()
		if out, err := exec.Command("cp", "-a", template+"/.", project).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		cmd = exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "prune", "--older-than", "0s", "--keep", fmt.Sprint(keep))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return project, cmd
	}
	// How long the removing takes: from prune.json written to removed, on
	// one copy left to finish.
	var window time.Duration
	{
		project, cmd := startPrune()
		intent := filepath.Join(project, layout.StoreDir, layout.PruneFile)
		var t0 time.Time
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Microsecond) {
			_, err := os.Stat(intent)
			if err == nil && t0.IsZero() {
				t0 = time.Now()
			}
			if err != nil && !t0.IsZero() {
				window = time.Since(t0)
				break
			}
		}
		if err := cmd.Wait(); err != nil || window == 0 {
			t.Fatalf("an uninterrupted prune: %v, took %s", err, window)
		}
	}
	const rounds = 8
	midway := 0
	var at []int // run files left at each kill
	for round := range rounds {
		project, cmd := startPrune()
		// Once the prune has said what it removes, at a random moment of
		// the removing.
		intent := filepath.Join(project, layout.StoreDir, layout.PruneFile)
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Microsecond) {
			if _, err := os.Stat(intent); err == nil {
				break
			}
		}
		time.Sleep(time.Duration(rand.Int64N(int64(window))))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if _, err := os.Stat(filepath.Join(project, layout.StoreDir, layout.PruneFile)); err == nil {
			midway++
		}
		left, _ := os.ReadDir(filepath.Join(project, layout.StoreDir, layout.RunsDir))
		at = append(at, len(left)-1) // the index is there too
		storeRuns(t, project)        // every run listed reads
		// The next process finishes it; the prune asked again has nothing
		// left to do.
		if out, err := exec.Command(bin, "-C", project, "--cache-dir", cacheDir, "prune", "--older-than", "0s", "--keep", fmt.Sprint(keep)).CombinedOutput(); err != nil {
			t.Fatalf("round %d: prune after the kill: %v: %s", round, err, out)
		}
		after := storeRuns(t, project)
		if len(after) != len(want) {
			t.Fatalf("round %d: %d runs after the prune, want %d", round, len(after), len(want))
		}
		for id := range want {
			if after[id] != before[id] {
				t.Fatalf("round %d: kept run %s changed:\n%s\nwas\n%s", round, id, after[id], before[id])
			}
		}
		files, _ := os.ReadDir(filepath.Join(project, layout.StoreDir, layout.RunsDir))
		for _, f := range files {
			if id, ok := strings.CutSuffix(f.Name(), ".json"); ok && !want[id] {
				t.Fatalf("round %d: the file of pruned run %s is left", round, id)
			}
		}
		if _, err := os.Stat(filepath.Join(project, layout.StoreDir, layout.PruneFile)); err == nil {
			t.Fatalf("round %d: prune.json left after the prune finished", round)
		}
	}
	t.Logf("prune removed %d runs in %s; %d kills of prune over %d runs, %d of them midway (prune.json written, not yet removed); run files left at each kill: %v",
		finished-keep, window.Round(time.Millisecond), rounds, finished+paused, midway, at)
}
