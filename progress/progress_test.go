package progress_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/12fa/12fa/progress"
)

func TestLog_AddReadStats(t *testing.T) {
	p := filepath.Join(t.TempDir(), progress.FileName)
	l, err := progress.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []progress.Entry{
		{Session: "r1", Phase: "step", Step: "a", Action: "step_completed", Result: "ok", DurationMS: 10},
		{Session: "r1", Phase: "log", Step: "a", Action: "log", Details: "hello"},
		{Session: "r1", Phase: "step", Step: "b", Action: "step_failed", Result: "failed", DurationMS: 5},
		{Session: "r2", Phase: "step", Step: "a", Action: "step_completed", Result: "ok", DurationMS: 1},
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// A torn last line (a crash mid-write) and a garbage line are skipped.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not json\n{\"session\":\"r1\",\"pha")
	f.Close()

	entries, off, err := progress.Read(p, 0)
	if err != nil || len(entries) != 4 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	st := progress.Summarize(entries, "r1")
	if st.Actions != 2 || st.Successes != 1 || st.Failures != 1 || st.SuccessRate != 0.5 || st.DurationMS != 15 {
		t.Fatalf("stats %+v", st)
	}
	// Following from the offset sees only what comes later.
	more, _, _ := progress.Read(p, off)
	if len(more) != 0 {
		t.Fatalf("read %d entries past the end", len(more))
	}
}
