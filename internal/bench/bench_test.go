package bench

import (
	"testing"

	"github.com/12fa/12fa/internal/testutil"
)

// BenchmarkSequentialSteps runs one workflow of b.N no-op steps (WAT and Go
// plugins) and reports the per-step median on the critical path, journal
// included: W1 as a Go benchmark.
func BenchmarkSequentialSteps(b *testing.B) {
	for _, p := range []struct{ name, rel string }{{"wat", "wat/noop.wasm"}, {"go", "gonoop/gonoop.wasm"}} {
		b.Run(p.name, func(b *testing.B) {
			cfg := Config{Dir: b.TempDir()}
			ds, err := sequential(b.Context(), cfg, "seq", testutil.ExamplePath(b, p.rel), max(b.N, 2))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(dist(ds).Median*1000, "ns/step-median")
		})
	}
}
