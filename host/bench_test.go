package host_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/12fa/12fa/host"
)

// BenchmarkPlugin_Call measures what every step attempt costs: a call in a
// reset instance where the plugin allows it, with the reset or a fresh
// instance in the background. The 24KiB cases show what a
// large envelope (many earlier outputs) costs a Go guest that decodes it.
func BenchmarkPlugin_Call(b *testing.B) {
	var outs []string
	for i := range 400 {
		outs = append(outs, fmt.Sprintf(`"s%04d":{"attempt":1,"count":%d,"step":"s%04d"}`, i, i, i))
	}
	big := []byte(`{"workflow":"w","run_id":"r","step":"s","attempt":1,"input":null,"outputs":{` + strings.Join(outs, ",") + `}}`)
	small := []byte(`{"workflow":"w","run_id":"r","step":"s","attempt":1,"input":null,"outputs":{}}`)
	for _, tc := range []struct {
		name, plugin string
		in           []byte
	}{
		{"wat-noop", "wat/noop.wasm", small},
		{"go-noop", "gonoop/gonoop.wasm", small},
		{"go-effect", "effect/effect.wasm", small},
		{"go-effect-24KiB-envelope", "effect/effect.wasm", big},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, err := host.New(b.Context(), host.Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(b.Context())
			p, err := h.Load(b.Context(), mustRead(b, tc.plugin), host.Limits{MaxPages: 1024})
			if err != nil {
				b.Fatal(err)
			}
			in := tc.in
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Call(b.Context(), host.Request{Input: in, Timeout: 10 * time.Second}); err != nil {
					b.Fatal(err)
				}
			}
			st := p.Stats()
			b.ReportMetric(float64(st.Instances)/float64(st.Calls), "instances/call")
		})
	}
}
