//go:build integration

package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsrunner"
)

// BenchmarkKits measures every language's greet build (go test -tags
// integration -run XXX -bench Kits ./tests/): its .wasm size, compiling it
// with an empty and with a warm compile cache, making an instance and
// making the first call in it, and a trivial call (the step's error path,
// which asks nothing) in a reused instance.
func BenchmarkKits(b *testing.B) {
	env, _ := json.Marshal(abi.Envelope{Workflow: "bench", RunID: "r", Step: "greet", Attempt: 1,
		Input: json.RawMessage(`{"name":"Ada","fail":"permanent"}`)})
	for _, k := range greetKits {
		wasm, err := os.ReadFile(filepath.Join(examples(b), k.rel))
		if err != nil {
			b.Fatal(err)
		}
		var config map[string]string
		if jsrunner.IsScript(k.rel) {
			wasm, config = jsrunner.Wasm, jsrunner.Config(nil, k.rel, wasm, "")
		}
		req := host.Request{Input: env, Timeout: 10 * time.Second, Config: config}
		load := func(b *testing.B, dir string) (*host.Host, *host.Plugin) {
			h, err := host.New(b.Context(), host.Config{CacheDir: dir}, nil)
			if err != nil {
				b.Fatal(err)
			}
			p, err := h.Load(b.Context(), wasm, host.Limits{MaxPages: 1024})
			if err != nil {
				b.Fatal(err)
			}
			return h, p
		}
		b.Run(k.lang+"/compile-cold", func(b *testing.B) {
			for b.Loop() {
				h, _ := load(b, b.TempDir())
				h.Close(b.Context())
			}
			b.ReportMetric(float64(len(wasm))/1024, "KiB-wasm")
		})
		warm := b.TempDir()
		h, _ := load(b, warm)
		h.Close(b.Context())
		b.Run(k.lang+"/compile-cached", func(b *testing.B) {
			for b.Loop() {
				h, _ := load(b, warm)
				h.Close(b.Context())
			}
		})
		b.Run(k.lang+"/instance+first-call", func(b *testing.B) {
			h, _ := load(b, warm)
			defer h.Close(b.Context())
			for b.Loop() {
				// A new memory cap makes a new compiled plugin (from the
				// cache) with no instance yet.
				b.StopTimer()
				h2, p := load(b, warm)
				b.StartTimer()
				if _, err := p.Call(b.Context(), req); err == nil {
					b.Fatal("the greet step's error path succeeded")
				}
				b.StopTimer()
				h2.Close(b.Context())
				b.StartTimer()
			}
		})
		b.Run(k.lang+"/call", func(b *testing.B) {
			h, p := load(b, warm)
			defer h.Close(b.Context())
			// Not timed: the first call (whose instance skips the warm-up)
			// and the warm instance made after it.
			for range 3 {
				_, _ = p.Call(b.Context(), req)
				time.Sleep(50 * time.Millisecond)
			}
			for b.Loop() {
				if _, err := p.Call(b.Context(), req); err == nil {
					b.Fatal("the greet step's error path succeeded")
				}
			}
			st := p.Stats()
			b.ReportMetric(float64(st.Instances)/float64(st.Calls), "instances/call")
		})
	}
}
