package host

import (
	"bytes"
	"strings"
	"testing"
)

// TestKernel_Blocks pins the block semantics guests rely on: offsets are
// never 0, blocks are zeroed, lengths are what was asked, freed blocks have
// no length and are reused, and bytes outside allocated memory are refused.
func TestKernel_Blocks(t *testing.T) {
	k := newKernel(1 << 20)
	a := k.alloc(10)
	b := k.alloc(0)
	if a == 0 || b == 0 || a == b || a%8 != 0 || b%8 != 0 {
		t.Fatalf("alloc gave %#x and %#x", a, b)
	}
	if k.length(a) != 10 || k.length(b) != 0 {
		t.Fatalf("lengths %d and %d, want 10 and 0", k.length(a), k.length(b))
	}
	if got, err := k.block(b); err != nil || len(got) != 0 {
		t.Fatalf("empty block: %q, %v", got, err)
	}
	mem, err := k.bytes(a, 10)
	if err != nil || !bytes.Equal(mem, make([]byte, 10)) {
		t.Fatalf("new block not zero: %v %v", mem, err)
	}
	copy(mem, "0123456789")
	k.freeBlock(a)
	if k.length(a) != 0 {
		t.Fatal("a freed block still has a length")
	}
	if _, err := k.block(a); err == nil {
		t.Fatal("block() read a freed block")
	}
	c := k.alloc(8)
	if c != a {
		t.Fatalf("a freed block of capacity 16 was not reused for 8 bytes: got %#x, freed %#x", c, a)
	}
	if got, _ := k.block(c); !bytes.Equal(got, make([]byte, 8)) {
		t.Fatalf("a reused block kept old bytes: %q", got)
	}
	for _, tc := range []struct{ off, n uint64 }{{0, 1}, {k.top, 1}, {k.top - 4, 8}, {1 << 40, 8}, {a, 1 << 63}} {
		if _, err := k.bytes(tc.off, tc.n); err == nil {
			t.Errorf("bytes(%#x, %d) outside the kernel memory was allowed", tc.off, tc.n)
		}
	}
	if _, err := k.block(1 << 40); err == nil || !strings.Contains(err.Error(), "outside the kernel memory") {
		t.Errorf("block(1<<40) = %v", err)
	}
	if _, err := k.block(a + 8); err == nil || !strings.Contains(err.Error(), "not an allocated block") {
		t.Errorf("block inside another = %v", err)
	}
}

// TestKernel_Cap: allocations stop at the cap (alloc returns 0 and the
// kernel remembers it, so the failure that follows is named a memory
// limit), and a free makes room again.
func TestKernel_Cap(t *testing.T) {
	k := newKernel(4096)
	var offs []uint64
	for {
		off := k.alloc(1000)
		if off == 0 {
			break
		}
		offs = append(offs, off)
	}
	// Four blocks' bytes would fit, but not with their bookkeeping.
	if len(offs) != 3 || !k.hitCap || k.top > k.max || uint64(len(k.mem)) > k.max {
		t.Fatalf("%d blocks of 1000 bytes in 4096, hitCap %v, top %d, len %d", len(offs), k.hitCap, k.top, len(k.mem))
	}
	k.freeBlock(offs[1])
	if k.alloc(1000) != offs[1] {
		t.Fatal("a freed block was not reused at the cap")
	}
	if k.alloc(1<<62) != 0 || k.alloc(^uint64(0)) != 0 {
		t.Fatal("a huge allocation did not fail")
	}
}

// TestKernel_Reset: after reset no byte, block, input, output or error of
// the call before is visible.
func TestKernel_Reset(t *testing.T) {
	k := newKernel(1 << 20)
	if err := k.setInput([]byte("secret input")); err != nil {
		t.Fatal(err)
	}
	off, _ := k.write([]byte("secret output"))
	k.output, k.outputSet = [2]uint64{off, 13}, true
	k.errBlock, _ = k.write([]byte("secret error"))
	top := k.top
	k.reset()
	if k.input != 0 || k.outputSet || k.errBlock != 0 || k.length(off) != 0 || k.top != kernelBase {
		t.Fatalf("reset kept state: %+v", k)
	}
	if !bytes.Equal(k.mem[:top], make([]byte, top)) {
		t.Fatal("reset left bytes in kernel memory")
	}
	if _, ok := k.outputBytes(); ok {
		t.Fatal("output survived the reset")
	}
	if _, ok := k.errorText(); ok {
		t.Fatal("error survived the reset")
	}
	// A new allocation over the old bytes reads zeros.
	n := k.alloc(64)
	if b, _ := k.block(n); !bytes.Equal(b, make([]byte, 64)) {
		t.Fatalf("block after reset holds %q", b)
	}
}

// TestKernel_FreeListBound: a guest that frees many blocks does not make
// allocation slow: the free list is bounded, and blocks past it are only
// forgotten.
func TestKernel_FreeListBound(t *testing.T) {
	k := newKernel(64 << 20)
	var offs []uint64
	for range 3 * maxFreeBlocks {
		offs = append(offs, k.alloc(16))
	}
	for _, off := range offs {
		k.freeBlock(off)
	}
	if len(k.free) != maxFreeBlocks {
		t.Fatalf("free list holds %d, want %d", len(k.free), maxFreeBlocks)
	}
	for _, off := range offs[maxFreeBlocks:] {
		if k.length(off) != 0 {
			t.Fatalf("forgotten block %#x still has a length", off)
		}
	}
	k.freeBlock(offs[0]) // twice: ignored
	if len(k.free) != maxFreeBlocks {
		t.Fatal("a double free changed the free list")
	}
}

// TestKernel_BlockCostCounts: what blocks cost the host (their bytes and
// their bookkeeping) stays within the cap whatever the guest asks, even
// empty blocks without end.
func TestKernel_BlockCostCounts(t *testing.T) {
	const max = 1 << 20
	k := newKernel(max)
	n := 0
	for k.alloc(0) != 0 {
		n++
	}
	if !k.hitCap {
		t.Fatal("the refused allocation did not note the cap")
	}
	if cost := uint64(len(k.mem)) + uint64(len(k.blocks))*blockCost; cost > max || n == 0 {
		t.Fatalf("%d empty blocks cost the host %d bytes under a cap of %d", n, cost, max)
	}
	k.reset()
	if len(k.blocks) != 0 || k.alloc(16) == 0 {
		t.Fatal("reset did not free the blocks")
	}
}
