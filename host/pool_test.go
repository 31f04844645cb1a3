package host_test

import (
	"context"
	"math/rand/v2"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/12fa/12fa/abi"
	"github.com/12fa/12fa/host"
)

// TestPool_Hammer has many goroutines call one plugin at once, run under
// -race: calls that succeed, that time out, that are canceled and that
// fail, with a memory budget that fits six instances, so that calls wait
// for budget while instances are reset, kept, dropped and made ahead.
// Every call that leaves its instance dirty (it stains it before sleeping)
// must cost that instance: a successful call always finds a clean one. Each
// call ends with its own cause, and once the host is closed no goroutine of
// it is left.
func TestPool_Hammer(t *testing.T) {
	before := goruntime.NumGoroutine()
	h, err := host.New(t.Context(), host.Config{CacheDir: sharedCache, MemoryBudget: 6 * 2 * 512 * host.PageSize}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Load(t.Context(), mustRead(t, "effect/effect.wasm"), host.Limits{MaxPages: 512})
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 8, 20
	type outcome struct{ kind, got string }
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wrong []outcome
		kinds = map[string]int{}
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range calls {
				kind, input, timeout := "ok", map[string]any{"stain": true}, 10*time.Second
				ctx, cancel := context.WithCancel(t.Context())
				switch n := r.IntN(20); {
				case n < 3:
					kind, input, timeout = "timeout", map[string]any{"stain": true, "sleep_ms": 150}, 30*time.Millisecond
				case n < 6:
					kind, input = "canceled", map[string]any{"stain": true, "sleep_ms": 150}
					time.AfterFunc(time.Duration(5+r.IntN(25))*time.Millisecond, cancel)
				case n < 8:
					kind, input = "failed", map[string]any{"stain": true, "fail": true}
				}
				res, err := p.Call(ctx, host.Request{Input: envelope(t, "s", input), Timeout: timeout})
				cancel()
				got := ""
				switch {
				case err == nil:
					got = "ok " + string(res.Output)
				default:
					got = string(host.CauseOf(err))
				}
				want := map[string]string{"ok": `ok {"stained":false}`, "timeout": string(abi.CauseTimeout),
					"canceled": string(abi.CauseCanceled), "failed": string(abi.CausePluginError)}[kind]
				mu.Lock()
				kinds[kind]++
				if got != want {
					wrong = append(wrong, outcome{kind, got})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, o := range wrong {
		t.Errorf("a %s call ended %s", o.kind, o.got)
	}
	st := p.Stats()
	t.Logf("calls by kind %v; %+v", kinds, st)
	if st.Resets == 0 {
		t.Errorf("%+v: no instance was reset and reused", st)
	}
	if err := h.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:goruntime.Stack(buf, true)])
	}
}
