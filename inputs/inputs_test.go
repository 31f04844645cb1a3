package inputs_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/inputs"
)

// clock is a settable clock for expiry tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T) (*inputs.Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return inputs.New(t.TempDir(), c.now), c
}

func TestStore_AskRespond(t *testing.T) {
	s, _ := newStore(t)
	req := abi.InputRequest{Key: "deploy", Question: "Deploy?", Options: []string{"yes", "no"}}
	r1, err := s.Ask("run1", "step", req)
	if err != nil || r1.Answered || r1.ID != inputs.ID("run1", "step", "deploy") {
		t.Fatalf("first ask: %+v %v", r1, err)
	}
	// Asking again (the step re-run) does not make a second question.
	if r2, _ := s.Ask("run1", "step", req); r2.ID != r1.ID || r2.Answered {
		t.Fatalf("second ask: %+v", r2)
	}
	if qs, _ := s.List(); len(qs) != 1 {
		t.Fatalf("%d questions", len(qs))
	}
	tests := []struct {
		id, answer string
		want       error
	}{
		{r1.ID, "maybe", inputs.ErrBadAnswer},
		{"q-nope", "yes", inputs.ErrNotFound},
		{r1.ID, "yes", nil},
		{r1.ID, "no", inputs.ErrAnswered},
	}
	for _, tc := range tests {
		if _, err := s.Respond(tc.id, tc.answer); !errors.Is(err, tc.want) {
			t.Fatalf("Respond(%s, %s) = %v, want %v", tc.id, tc.answer, err, tc.want)
		}
	}
	if r3, _ := s.Ask("run1", "step", req); !r3.Answered || r3.Answer != "yes" {
		t.Fatalf("after the answer: %+v", r3)
	}
}

func TestStore_Expiry(t *testing.T) {
	s, c := newStore(t)
	withDefault := abi.InputRequest{Key: "a", Question: "A?", Options: []string{"x", "y"}, Default: "y", Timeout: "1h"}
	without := abi.InputRequest{Key: "b", Question: "B?", Timeout: "1h"}
	for _, r := range []abi.InputRequest{withDefault, without} {
		if resp, err := s.Ask("r", "s", r); err != nil || resp.Answered {
			t.Fatalf("ask %s: %+v %v", r.Key, resp, err)
		}
	}
	c.t = c.t.Add(2 * time.Hour)
	if resp, err := s.Ask("r", "s", withDefault); err != nil || !resp.Answered || resp.Answer != "y" {
		t.Fatalf("expired with a default: %+v %v", resp, err)
	}
	if _, err := s.Ask("r", "s", without); !errors.Is(err, inputs.ErrExpired) {
		t.Fatalf("expired without a default: %v", err)
	}
	if _, err := s.Ask("r", "s", abi.InputRequest{Key: "c", Question: "C?", Timeout: "soon"}); err == nil {
		t.Fatal("a bad timeout was accepted")
	}
}

// TestStore_Wait sees an answer given by another writer of the file.
func TestStore_Wait(t *testing.T) {
	dir := t.TempDir()
	s := inputs.New(dir, nil)
	resp, err := s.Ask("r", "s", abi.InputRequest{Key: "k", Question: "Q?"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = inputs.New(filepath.Clean(dir), nil).Respond(resp.ID, "done")
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Wait(ctx, []string{resp.ID}); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	other, _ := s.Ask("r", "s", abi.InputRequest{Key: "other", Question: "Other?"})
	if err := s.Wait(short, []string{other.ID}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on an unanswered question: %v", err)
	}
}

func TestStore_Supersede(t *testing.T) {
	s, _ := newStore(t)
	a, _ := s.Ask("run1", "step", abi.InputRequest{Key: "a", Question: "A?"})
	b, _ := s.Ask("run1", "step", abi.InputRequest{Key: "b", Question: "B?"})
	other, _ := s.Ask("run1", "other", abi.InputRequest{Key: "a", Question: "A?"})
	n, err := s.Supersede("run1", "step", []string{b.ID})
	if err != nil || n != 1 {
		t.Fatalf("Supersede: %d, %v", n, err)
	}
	qs, _ := s.Get([]string{a.ID, b.ID, other.ID})
	if qs[0].Status != inputs.Superseded || qs[1].Status != inputs.Pending || qs[2].Status != inputs.Pending {
		t.Fatalf("statuses %s %s %s, want superseded pending pending", qs[0].Status, qs[1].Status, qs[2].Status)
	}
	if _, err := s.Respond(a.ID, "x"); !errors.Is(err, inputs.ErrSuperseded) {
		t.Fatalf("Respond to a superseded question: %v", err)
	}
	// Nothing waits for a superseded question.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Wait(ctx, []string{a.ID}); err != nil {
		t.Fatalf("Wait on a superseded question: %v", err)
	}
	// Asked again, it is pending again and can be answered.
	if r, _ := s.Ask("run1", "step", abi.InputRequest{Key: "a", Question: "A?"}); r.Answered {
		t.Fatal("a superseded question asked again came back answered")
	}
	if _, err := s.Respond(a.ID, "x"); err != nil {
		t.Fatalf("Respond after asking again: %v", err)
	}
}
