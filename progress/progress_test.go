package progress_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/12fa/12fa/progress"
)

func TestLog_AddReadStats(t *testing.T) {
	p := filepath.Join(t.TempDir(), progress.FileName)
	l, err := progress.Open(p, 0)
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

// TestLog_Rotates: past its limit the log moves aside to progress.jsonl.1
// and starts again, so the two files hold at most about two limits' worth;
// ReadAll reads both in order, and following from an offset past a
// rotation starts over at the new file's beginning.
func TestLog_Rotates(t *testing.T) {
	p := filepath.Join(t.TempDir(), progress.FileName)
	const limit = 4 << 10
	l, err := progress.Open(p, limit)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	for i := range n {
		if err := l.Add(progress.Entry{Session: "r", Phase: "step", Action: "step_completed", DurationMS: float64(i)}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(60 * time.Millisecond) // let the writer run: several writes, several rotations
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cur, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(p + progress.RotatedSuffix)
	if err != nil {
		t.Fatalf("no rotated part: %v", err)
	}
	if total := cur.Size() + old.Size(); total > 3*limit {
		t.Fatalf("the log holds %d bytes with a %d-byte limit", total, limit)
	}
	entries, off, err := progress.ReadAll(p)
	if err != nil || len(entries) == 0 || len(entries) >= n {
		t.Fatalf("%d entries of %d after rotation, %v", len(entries), n, err)
	}
	// The latest entries are kept, in order.
	if last := entries[len(entries)-1].DurationMS; last != n-1 {
		t.Fatalf("last entry %v, want %d", last, n-1)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].DurationMS != entries[i-1].DurationMS+1 {
			t.Fatalf("entry %d is %v after %v", i, entries[i].DurationMS, entries[i-1].DurationMS)
		}
	}
	// A follower whose offset is past the new file's end starts over.
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"session":"r","phase":"step","action":"x"}` + "\n")
	f.Close()
	more, _, err := progress.Read(p, off)
	if err != nil || len(more) != 1 || more[0].Action != "x" {
		t.Fatalf("after a rotation, following read %+v, %v", more, err)
	}
}

// sinkLines is a Sink keeping what it is given.
type sinkLines struct{ lines, sessions []string }

func (s *sinkLines) WriteEntries(lines []progress.Line) error {
	for _, l := range lines {
		s.lines = append(s.lines, string(l.JSON))
		s.sessions = append(s.sessions, l.Session)
	}
	return nil
}

// TestLog_Sink: a sink gets every entry the file gets, in order, one
// line each without its newline.
func TestLog_Sink(t *testing.T) {
	p := filepath.Join(t.TempDir(), progress.FileName)
	sink := &sinkLines{}
	l, err := progress.OpenWith(p, 0, sink)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if err := l.Add(progress.Entry{Session: fmt.Sprint("r", i%3), Phase: "log", Action: "log", Details: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			time.Sleep(60 * time.Millisecond) // more than one batch
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := progress.Read(p, 0)
	if err != nil || len(entries) != 250 || len(sink.lines) != 250 {
		t.Fatalf("%d entries in the file (%v), %d in the sink, want 250 each", len(entries), err, len(sink.lines))
	}
	for i, line := range sink.lines {
		var e progress.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Details != fmt.Sprint(i) || e != entries[i] || sink.sessions[i] != e.Session {
			t.Fatalf("sink line %d: %q of session %q (%v), file entry %+v", i, line, sink.sessions[i], err, entries[i])
		}
	}
}
