package state_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/internal/layout"
	"github.com/12fa/12fa/state"
	"github.com/12fa/12fa/state/statetest"
)

// TestFileStore_Conformance runs the store conformance suite against the
// file store, with a small compaction size so that the journal is
// compacted often, in the crash check too (which counts the kills that
// landed while a compaction was writing).
func TestFileStore_Conformance(t *testing.T) {
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), state.DirName)
			if err := state.Init(dir); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		Open: func(_ testing.TB, dir string) (state.Store, error) {
			return state.Open(state.Config{Dir: dir, CompactBytes: 64 << 10}, nil)
		},
		Tear: func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, state.JournalFile), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(`{"seq":99,"time":"2026-01-01T00:00:00Z","type":"step_comp`); err != nil {
				t.Fatal(err)
			}
		},
		AtKill: func(dir string) string {
			if compacting(dir) {
				return "compacting"
			}
			return "appending"
		},
		KillWhen: compacting,
		Kills:    20,
	})
}

// compacting reports whether a compaction is writing the next journal.
func compacting(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, layout.JournalCompacting))
	return err == nil
}
