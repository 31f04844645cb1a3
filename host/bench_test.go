package host_test

import (
	"testing"
	"time"

	"github.com/12fa/12fa/host"
)

// BenchmarkPlugin_Call measures a fresh instance + call + close per
// iteration (what every step attempt costs).
func BenchmarkPlugin_Call(b *testing.B) {
	for _, tc := range []struct{ name, plugin string }{{"wat-noop", "wat/noop.wasm"}, {"go-effect", "effect/effect.wasm"}} {
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
			in := []byte(`{"workflow":"w","run_id":"r","step":"s","attempt":1,"input":null,"outputs":{}}`)
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Call(b.Context(), host.Request{Input: in, Timeout: 10 * time.Second}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
