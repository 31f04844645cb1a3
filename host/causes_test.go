package host_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/12fa/12fa/host"
)

// The cause of a failed call is what ended it, even after an allocation
// was refused earlier in the call.
func TestPlugin_Call_CauseIsWhatEndedTheCall(t *testing.T) {
	h := newHost(t)
	p := mustLoad(t, h, "wat/allocfail.wasm", 16)
	for fn, want := range map[string]error{
		"loop":    host.ErrTimeout,
		"badcall": host.ErrBadHostCall,
		"trap":    host.ErrMemoryLimit,
	} {
		_, err := p.Call(t.Context(), host.Request{Function: fn, Input: []byte("{}"), Timeout: 300 * time.Millisecond})
		if !errors.Is(err, want) {
			t.Errorf("%s after a refused alloc: %v (%s), want %v", fn, err, host.CauseOf(err), want)
		}
	}
}

// Empty blocks without end cost the host no more than the step's memory
// cap: the kernel counts what each block costs it.
func TestPlugin_Call_EmptyBlocksStayWithinTheCap(t *testing.T) {
	h := newHost(t)
	const pages = 1024 // 64 MiB
	p := mustLoad(t, h, "wat/allocfail.wasm", pages)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := p.Call(t.Context(), host.Request{Function: "tiny", Input: []byte("{}"), Timeout: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	grew := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("alloc(0) until refused under a %d MiB cap: the host allocated %d MiB", pages*host.PageSize>>20, grew>>20)
	// The kernel's memory and map, grown a few times, and wazero's own.
	if limit := int64(3 * pages * host.PageSize); grew > limit {
		t.Fatalf("the host allocated %d MiB for empty blocks under a %d MiB cap", grew>>20, pages*host.PageSize>>20)
	}
}
