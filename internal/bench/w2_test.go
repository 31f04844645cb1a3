package bench

import (
	"testing"

	"github.com/12fa/12fa/internal/testutil"
)

// BenchmarkConcurrentRuns is W2 as a Go benchmark: 200 runs × 10 no-op WAT
// steps at once, per iteration.
func BenchmarkConcurrentRuns(b *testing.B) {
	cfg := Config{Dir: b.TempDir(), SmallPlugin: testutil.ExamplePath(b, "wat/noop.wasm")}
	cfg.defaults()
	for b.Loop() {
		w, err := concurrent(b.Context(), cfg, Dist{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(w.StepsPerSec, "steps/s")
	}
}
