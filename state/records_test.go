package state_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/12fa/12fa/state"
)

// lt returns a JSON string of n bytes made of '<', the character
// encoding/json escapes to six bytes by default.
func lt(n int) []byte {
	return []byte(`"` + strings.Repeat("<", n-2) + `"`)
}

func startRun(t *testing.T, s *state.FileStore, run string) {
	t.Helper()
	if err := s.Append(context.Background(),
		&state.Record{Type: state.EventRunStarted, Run: run, Workflow: "w", Steps: []state.StepDecl{{ID: "a", Plugin: "p"}, {ID: "b", Plugin: "p"}}},
	); err != nil {
		t.Fatal(err)
	}
}

// A record is written byte for byte as its values are: no HTML escaping
// makes it larger than what the limits measured.
func TestStore_Append_WritesValuesUnescaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	startRun(t, s, "r1")
	out := lt(8 << 20)
	ctxv := lt(1 << 20)
	rec := &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "a", Attempt: 1, Output: out,
		Context: map[string]json.RawMessage{"k<&>": ctxv}, Error: "<&>"}
	if err := s.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, state.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if max := int64(len(out)+len(ctxv)) + 1024; st.Size() > max {
		t.Fatalf("journal is %d bytes for %d bytes of values: they were escaped", st.Size(), len(out)+len(ctxv))
	}
	s = open(t, dir)
	defer s.Close()
	r, _ := s.Run("r1")
	step, _ := r.Step("a")
	if step.Status != state.StepCompleted || !bytes.Equal(step.Output, out) || !bytes.Equal(r.Context["k<&>"], ctxv) {
		t.Fatalf("read back: status %s, output %d bytes, context %d bytes", step.Status, len(step.Output), len(r.Context["k<&>"]))
	}
}

// A record over MaxRecordBytes is refused before anything is written,
// with an error naming it; the store goes on.
func TestStore_Append_RefusesOversizedRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	startRun(t, s, "r1")
	before, _ := os.Stat(filepath.Join(dir, state.JournalFile))
	big := &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "a", Attempt: 1, Output: lt(state.MaxRecordBytes)}
	err := s.Append(context.Background(), &state.Record{Type: state.EventStepStarted, Run: "r1", Step: "a", Attempt: 1}, big)
	var tooLarge *state.RecordTooLargeError
	if !errors.Is(err, state.ErrRecordTooLarge) || !errors.As(err, &tooLarge) || tooLarge.Step != "a" || tooLarge.Bytes <= state.MaxRecordBytes {
		t.Fatalf("Append of a %d-byte output: %v", state.MaxRecordBytes, err)
	}
	if !strings.Contains(err.Error(), `step_completed record of run r1 step "a"`) {
		t.Fatalf("error does not name the record: %v", err)
	}
	after, _ := os.Stat(filepath.Join(dir, state.JournalFile))
	if after.Size() != before.Size() {
		t.Fatalf("journal grew from %d to %d bytes: part of a refused batch was written", before.Size(), after.Size())
	}
	if r, _ := s.Run("r1"); r.Steps[0].Status != state.StepPending {
		t.Fatalf("refused batch changed the run: step a is %s", r.Steps[0].Status)
	}
	ok := &state.Record{Type: state.EventStepStarted, Run: "r1", Step: "a", Attempt: 1}
	if err := s.Append(context.Background(), ok); err != nil || ok.Seq != 2 {
		t.Fatalf("append after a refusal: seq %d, %v", ok.Seq, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A complete record larger than MaxRecordBytes (as a version that checked
// limits before escaping could write) is read back, never dropped as a
// torn tail; an incomplete one is.
func TestStore_Open_LargeCompleteRecordIsNotTorn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".12fa")
	s := open(t, dir)
	startRun(t, s, "r1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Over the limit, as 11 MiB of '<' escaped six times would be.
	value := `"` + strings.Repeat(`x`, state.MaxRecordBytes+1<<20) + `"`
	line := `{"seq":2,"time":"2026-01-01T00:00:00Z","type":"step_completed","run":"r1","step":"a","attempt":1,"output":` + value + "}\n"
	journal := filepath.Join(dir, state.JournalFile)
	appendFile(t, journal, line)
	ro, err := state.Open(state.Config{Dir: dir, ReadOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ro.Run("r1")
	if r.Steps[0].Status != state.StepCompleted || len(r.Steps[0].Output) != len(value) {
		t.Fatalf("a complete %d-byte record was not read back: step a is %s", len(line), r.Steps[0].Status)
	}
	ro.Close()
	// The same record cut short is a torn tail.
	appendFile(t, journal, strings.Replace(line[:len(line)/2], `"seq":2`, `"seq":3`, 1))
	s = open(t, dir)
	defer s.Close()
	if r, _ := s.Run("r1"); r.Steps[0].Status != state.StepCompleted {
		t.Fatal("the complete record was lost with the torn one after it")
	}
	st, _ := os.Stat(journal)
	if want := int64(len(line)); st.Size() < want || st.Size() > want+4096 {
		t.Fatalf("journal is %d bytes after dropping the torn tail, want a little over %d", st.Size(), want)
	}
}
