package state_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/state"
)

// oldJournals holds stores written by the code of commit 69bc251, before
// causes were typed (see its README.md).
const oldJournals = "testdata/journals-69bc251"

// TestOldJournalsRead opens each store an older version wrote: every record
// still decodes with no field left over, and every cause it holds is one
// abi.Cause knows, on the runs and steps the store rebuilds from it.
func TestOldJournalsRead(t *testing.T) {
	want := map[string][]abi.Cause{
		"hostile": {abi.CauseTimeout, abi.CauseMemoryLimit, abi.CauseTrap, abi.CauseBadHostCall,
			abi.CauseOutputTooLarge, abi.CausePluginError},
		"rollback": {abi.CausePluginError, abi.CauseRequested, abi.CauseRollback},
		"inputs":   {abi.CauseWaiting},
		"js_steps": {abi.CausePluginError, abi.CauseTimeout, abi.CauseTrap, abi.CauseWaiting},
	}
	names, err := os.ReadDir(oldJournals)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range names {
		if !e.IsDir() {
			continue
		}
		seen++
		t.Run(e.Name(), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(oldJournals, e.Name(), state.JournalFile))
			if err != nil {
				t.Fatal(err)
			}
			recCauses := map[abi.Cause]bool{}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for line := 1; sc.Scan(); line++ {
				var rec state.Record
				dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&rec); err != nil {
					t.Fatalf("line %d: %v", line, err)
				}
				if rec.Cause != "" {
					recCauses[rec.Cause] = true
					if !rec.Cause.Known() {
						t.Errorf("line %d: cause %q is not an abi.Cause", line, rec.Cause)
					}
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}

			dir := filepath.Join(t.TempDir(), state.DirName)
			if err := state.Init(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, state.JournalFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := state.Open(state.Config{Dir: dir, ReadOnly: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			runs := allRuns(t, s)
			if len(runs) == 0 {
				t.Fatal("no runs")
			}
			for _, r := range runs {
				if r.Cause != "" && !r.Cause.Known() {
					t.Errorf("run %s: cause %q is not an abi.Cause", r.ID, r.Cause)
				}
				for _, st := range r.Steps {
					if st.Cause != "" && !st.Cause.Known() {
						t.Errorf("run %s step %s: cause %q is not an abi.Cause", r.ID, st.ID, st.Cause)
					}
				}
				if name, ok := strings.CutPrefix(r.ID, "run-"); ok && e.Name() == "every-cause" {
					// One run per cause, its step failed with it.
					if r.Cause != abi.Cause(name) || r.Steps[0].Cause != abi.Cause(name) || r.Status != state.RunPaused {
						t.Errorf("run %s: %s, cause %q, step cause %q", r.ID, r.Status, r.Cause, r.Steps[0].Cause)
					}
				}
			}
			for _, c := range want[e.Name()] {
				if !recCauses[c] {
					t.Errorf("no record with cause %q", c)
				}
			}
			if e.Name() == "every-cause" && len(runs) != 23 {
				t.Errorf("every-cause holds %d runs, want one for each of the 23 causes written then", len(runs))
			}
		})
	}
	if seen < 5 {
		t.Fatalf("%d old stores under %s, want 5", seen, oldJournals)
	}
}
