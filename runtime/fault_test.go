package runtime_test

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/12fa/12fa/runtime"
	"github.com/12fa/12fa/state"
)

// fullDisk fails every write once armed, as a full disk would.
type fullDisk struct {
	*os.File
	full *atomic.Bool
}

func (f fullDisk) Write(b []byte) (int, error) {
	if f.full.Load() {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(b)
}

// TestRuntime_Run_JournalFull: the disk fills after step a completed. The
// run stops with an error naming the journal; once there is room again, the
// run resumes after a, which does not run again.
func TestRuntime_Run_JournalFull(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(effect("a", true, nil), effect("b", true, nil), effect("c", true, nil))
	var full atomic.Bool
	rt, err := runtime.New(t.Context(), runtime.Config{ProjectDir: f.project, CacheDir: f.cache,
		WrapJournal: func(file *os.File) state.JournalWriter { return fullDisk{file, &full} },
		OnEvent: func(e runtime.Event) {
			if e.Type == runtime.EventStepCompleted && e.Step == "a" {
				full.Store(true)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Run(t.Context(), m, runtime.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "write journal") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("err = %v, want a journal write error", err)
	}
	rt.Close(t.Context()) // may fail too: the disk is still full

	rt = f.open()
	defer rt.Close(t.Context())
	f.ran()
	res, err := rt.Run(t.Context(), m, runtime.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.ran(), ","); got != "b,c" || res.Replayed != 1 || res.Status != state.RunCompleted {
		t.Fatalf("after the fault: ran %s, %d replayed, %s", got, res.Replayed, res.Status)
	}
}
