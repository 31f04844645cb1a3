//go:build integration

package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBench_Quick runs `12fa bench --quick` to keep the harness working:
// every part reports, none fails, and no completed step runs again in W3.
func TestBench_Quick(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	cmd := exec.Command(bin, "bench", "--quick", "--bench-dir", filepath.Join(dir, "b"), "--examples", examples(t), "--out", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, b)
	}
	for _, row := range []string{"floor:", "W1 small (WAT)", "W1 Go", "W2 ", "W3 recovery overhead", "cold start, warm cache", "flatness"} {
		if !strings.Contains(string(b), row) {
			t.Errorf("table lacks %q:\n%s", row, b)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Floor struct {
			Median float64 `json:"median_us"`
		} `json:"floor"`
		W2 struct {
			StepsFinished int `json:"steps_finished"`
		} `json:"w2"`
		W3 struct {
			CompletedRerun int `json:"completed_steps_rerun"`
			KilledAfter    int `json:"killed_after_steps"`
		} `json:"w3"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Floor.Median <= 0 || rep.W2.StepsFinished != 100 || rep.W3.KilledAfter == 0 || rep.W3.CompletedRerun != 0 {
		t.Fatalf("report: %s", raw)
	}
}
