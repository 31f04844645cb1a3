package state_test

import (
	"testing"

	"github.com/12fa/12fa/state"
)

// TestRun_Summary_CountsAsTheStepsSay: the completed-step count a folded
// run keeps as it goes (Summary, once per append in a store) is the count
// of its steps completed, after every record that moves a step: started
// again after completing (a rerun), failed, marked done, a restore that
// resets later steps, a run decoded from its document.
func TestRun_Summary_CountsAsTheStepsSay(t *testing.T) {
	recs := []*state.Record{
		{Type: state.EventRunStarted, Run: "r", Workflow: "w", Steps: []state.StepDecl{{ID: "a", Plugin: "p"}, {ID: "b", Plugin: "p"}, {ID: "c", Plugin: "p"}}},
		{Type: state.EventStepStarted, Run: "r", Step: "a", Attempt: 1},
		{Type: state.EventStepCompleted, Run: "r", Step: "a", Attempt: 1},
		{Type: state.EventStepStarted, Run: "r", Step: "b", Attempt: 1},
		{Type: state.EventStepFailed, Run: "r", Step: "b", Attempt: 1, Error: "x"},
		{Type: state.EventStepStarted, Run: "r", Step: "b", Attempt: 2},
		{Type: state.EventStepMarkedDone, Run: "r", Step: "b"},
		{Type: state.EventStepStarted, Run: "r", Step: "c", Attempt: 1},
		{Type: state.EventStepCompleted, Run: "r", Step: "c", Attempt: 1},
		{Type: state.EventStepCompleted, Run: "r", Step: "c", Attempt: 1},
		{Type: state.EventRunRestored, Run: "r", Step: "a"},
		{Type: state.EventStepStarted, Run: "r", Step: "b", Attempt: 1},
		{Type: state.EventStepCompleted, Run: "r", Step: "b", Attempt: 1},
		{Type: state.EventStepStarted, Run: "r", Step: "a", Attempt: 2},
	}
	want := []int{0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 1, 1, 2, 1}
	runs := map[string]*state.Run{}
	for i, rec := range recs {
		rec.Seq = uint64(i + 1)
		if err := state.Apply(runs, rec); err != nil {
			t.Fatalf("record %d (%s): %v", i, rec.Type, err)
		}
		r := runs["r"]
		if got := r.Summary().Done; got != want[i] {
			t.Errorf("after record %d (%s): Summary().Done = %d, want %d", i, rec.Type, got, want[i])
		}
		if got := r.Info().Done; got != want[i] {
			t.Errorf("after record %d (%s): Info().Done = %d, want %d", i, rec.Type, got, want[i])
		}
		// A copy decoded from a document counts its steps.
		c := r.Clone()
		if got := c.Summary().Done; got != want[i] {
			t.Errorf("after record %d: a clone's Summary().Done = %d, want %d", i, got, want[i])
		}
	}
}
