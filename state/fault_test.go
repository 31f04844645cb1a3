package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/12fa/12fa/state"
)

// faultyFile fails writes or fsyncs once armed: a full disk writes part of
// a batch and fails (ENOSPC), a failing device fails the fsync (EIO).
type faultyFile struct {
	*os.File
	failWrite, failSync atomic.Bool
}

func (f *faultyFile) Write(b []byte) (int, error) {
	if f.failWrite.Load() {
		n, _ := f.File.Write(b[:len(b)/2]) // a torn write
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(b)
}

func (f *faultyFile) Sync() error {
	if f.failSync.Load() {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Sync()
}

func TestStore_Append_WriteFaults(t *testing.T) {
	for _, fault := range []string{"write", "fsync"} {
		t.Run(fault, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ".12fa")
			if err := state.Init(dir); err != nil {
				t.Fatal(err)
			}
			var ff *faultyFile
			s, err := state.Open(state.Config{Dir: dir, WrapJournal: func(f *os.File) state.JournalWriter {
				ff = &faultyFile{File: f}
				return ff
			}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			twoSteps(t, s) // committed before the fault
			if fault == "write" {
				ff.failWrite.Store(true)
			} else {
				ff.failSync.Store(true)
			}
			err = s.Append(context.Background(), &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "b", Attempt: 1, Output: []byte(`{}`)})
			want := map[string]syscall.Errno{"write": syscall.ENOSPC, "fsync": syscall.EIO}[fault]
			if !errors.Is(err, want) || !strings.Contains(err.Error(), fault+" journal") {
				t.Fatalf("err = %v, want %v naming the %s", err, want, fault)
			}
			// The store refuses more records rather than guess what reached
			// the disk.
			ff.failWrite.Store(false)
			ff.failSync.Store(false)
			if err := s.Append(context.Background(), &state.Record{Type: state.EventRunCompleted, Run: "r1"}); err == nil {
				t.Fatal("a store whose journal failed took another record")
			}
			s.Close()

			// Reopened without the fault: what was committed is there, the torn
			// tail (if any) is dropped, and appending works again.
			s = open(t, dir)
			defer s.Close()
			r, _ := s.Run("r1")
			if a, _ := r.Step("a"); a.Status != state.StepCompleted {
				t.Fatalf("committed step a is %s after the fault", a.Status)
			}
			b, _ := r.Step("b")
			if b.Status == state.StepCompleted {
				// Only an fsync fault may leave the record in the page cache.
				if fault == "write" {
					t.Fatal("a torn record was read back")
				}
				return
			}
			if err := s.Append(context.Background(), &state.Record{Type: state.EventStepCompleted, Run: "r1", Step: "b", Attempt: 1, Output: []byte(`{}`)}); err != nil {
				t.Fatalf("append after reopening: %v", err)
			}
		})
	}
}
