package features_test

import (
	"errors"
	"testing"

	"github.com/12fa/12fa/features"
)

func TestTracker(t *testing.T) {
	tr := features.New(t.TempDir(), nil)
	a, err := tr.Add("Login page", "high")
	if err != nil || a.ID != 1 || a.Status != "pending" {
		t.Fatalf("add: %+v %v", a, err)
	}
	b, _ := tr.Add("Audit log", "")
	if b.ID != 2 || b.Priority != "medium" {
		t.Fatalf("second: %+v", b)
	}
	if _, err := tr.SetStatus(1, "complete"); err != nil {
		t.Fatal(err)
	}
	done, _ := tr.List("complete")
	if len(done) != 1 || done[0].Name != "Login page" {
		t.Fatalf("complete: %+v", done)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{func() error { _, err := tr.Add("X", "urgent"); return err }(), features.ErrBadPrio},
		{func() error { _, err := tr.SetStatus(1, "done"); return err }(), features.ErrBadStatus},
		{func() error { _, err := tr.SetStatus(9, "complete"); return err }(), features.ErrNotFound},
		{func() error { _, err := tr.List("nope"); return err }(), features.ErrBadStatus},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("err = %v, want %v", tc.err, tc.want)
		}
	}
}
