package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/12fa/12fa/abi"
)

// kernel is 12fa's implementation of the Extism kernel: the memory, input,
// output and error a guest reaches through the "extism:host/env" imports.
// Extism's own kernel is a Wasm module instantiated beside every plugin
// instance (go-sdk looks its functions up on every call and zeroes a
// megabyte of its memory per instance); this one is plain Go owned by the
// instance, reset between calls. RATIONALE.md says why 12fa has its own.
//
// Blocks live in one byte slice; an offset is an index into it and 0 is
// never a block. A block is 8-byte aligned. Freed blocks are reused for
// allocations that fit.
type kernel struct {
	mem    []byte
	top    uint64 // end of the highest block; mem[top:] is unused and zero
	max    uint64 // cap on len(mem)
	blocks map[uint64]block
	free   []uint64 // offsets of freed blocks, reused first-fit
	hitCap bool     // an allocation failed at the cap

	input     uint64 // offset of the input block, 0 before input is set
	output    [2]uint64
	outputSet bool
	errBlock  uint64
}

type block struct{ len, cap uint64 }

const (
	kernelBase = 8 // first block offset: 0 stays the null offset
	// maxFreeBlocks bounds the free list; blocks freed past it are reused
	// only after the call.
	maxFreeBlocks = 1024
	// blockCost is what one entry of kernel.blocks costs the host, counted
	// toward the cap with the block's bytes.
	blockCost = 64
	// keepBlocks bounds the blocks map kept across a reset; a larger one is
	// dropped so that an idle instance holds no more than a small call
	// needs.
	keepBlocks = 4096
)

func newKernel(max uint64) *kernel {
	return &kernel{max: max, top: kernelBase, blocks: make(map[uint64]block)}
}

// reset forgets every block and zeroes the memory used, so that the next
// call sees none of this one's bytes.
func (k *kernel) reset() {
	clear(k.mem[:min(k.top, uint64(len(k.mem)))])
	k.top = kernelBase
	if len(k.blocks) > keepBlocks {
		k.blocks = make(map[uint64]block)
	} else {
		clear(k.blocks)
	}
	k.free = k.free[:0]
	k.hitCap = false
	k.input, k.output, k.outputSet, k.errBlock = 0, [2]uint64{}, false, 0
}

// alloc returns a new zeroed block of n bytes, or 0 when the cap is reached.
func (k *kernel) alloc(n uint64) uint64 {
	if n > k.max {
		k.hitCap = true
		return 0
	}
	for i, off := range k.free {
		if b := k.blocks[off]; b.cap >= n {
			k.free[i] = k.free[len(k.free)-1]
			k.free = k.free[:len(k.free)-1]
			clear(k.mem[off : off+b.cap])
			k.blocks[off] = block{len: n, cap: b.cap}
			return off
		}
	}
	c := (max(n, 1) + 7) &^ 7
	off := k.top
	// A block costs the host its bytes and its entry in blocks; both count
	// toward the cap (len(mem) + len(blocks)*blockCost <= max), so no
	// sequence of calls (alloc(0) in a loop, say) takes more host memory
	// than the cap allows.
	book := uint64(len(k.blocks)+1) * blockCost
	if c > k.max || off > k.max-c || book > k.max-max(uint64(len(k.mem)), off+c) {
		k.hitCap = true
		return 0
	}
	if need := off + c; need > uint64(len(k.mem)) {
		// Grow geometrically, but at most half way to the cap, so that room
		// is left for the bookkeeping of later blocks.
		room := k.max - book
		size := min(max(need, 2*uint64(len(k.mem)), 4096), need+(room-need)/2)
		grown := make([]byte, size)
		copy(grown, k.mem)
		k.mem = grown
	}
	k.top = off + c
	k.blocks[off] = block{len: n, cap: c}
	return off
}

// free releases the block at off; anything else is ignored, as Extism does.
func (k *kernel) freeBlock(off uint64) {
	b, ok := k.blocks[off]
	if !ok || b.len == math.MaxUint64 {
		return
	}
	if len(k.free) >= maxFreeBlocks {
		delete(k.blocks, off)
		return
	}
	k.blocks[off] = block{len: math.MaxUint64, cap: b.cap} // freed: no length
	k.free = append(k.free, off)
}

// length is the length of the live block at off, 0 when there is none.
func (k *kernel) length(off uint64) uint64 {
	if b, ok := k.blocks[off]; ok && b.len != math.MaxUint64 {
		return b.len
	}
	return 0
}

// bytes returns the n bytes at off, or an error when they are not all
// inside allocated kernel memory.
func (k *kernel) bytes(off, n uint64) ([]byte, error) {
	if off < kernelBase || off > k.top || n > k.top-off {
		return nil, fmt.Errorf("%d bytes at offset %#x are outside the kernel memory", n, off)
	}
	return k.mem[off : off+n], nil
}

// block returns the contents of the live block at off.
func (k *kernel) block(off uint64) ([]byte, error) {
	if off == 0 {
		return nil, errors.New("null offset")
	}
	if off >= k.top {
		return nil, fmt.Errorf("offset %#x is outside the kernel memory", off)
	}
	b, ok := k.blocks[off]
	if !ok || b.len == math.MaxUint64 {
		return nil, fmt.Errorf("offset %#x is not an allocated block", off)
	}
	return k.mem[off : off+b.len], nil
}

// write copies b into a new block and returns its offset.
func (k *kernel) write(b []byte) (uint64, error) {
	off := k.alloc(uint64(len(b)))
	if off == 0 {
		return 0, fmt.Errorf("the kernel memory is full (%d bytes)", k.max)
	}
	copy(k.mem[off:], b)
	return off, nil
}

// setInput writes the call's input into a block of its own.
func (k *kernel) setInput(b []byte) error {
	off, err := k.write(b)
	k.input = off
	return err
}

// outputBytes returns the output the guest set, if any.
func (k *kernel) outputBytes() ([]byte, bool) {
	if !k.outputSet {
		return nil, false
	}
	b, err := k.bytes(k.output[0], k.output[1])
	return b, err == nil
}

// errorText returns the error the guest set, if any.
func (k *kernel) errorText() (string, bool) {
	if k.errBlock == 0 {
		return "", false
	}
	b, err := k.block(k.errBlock)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// callState is what host functions find in the context of a guest call:
// the instance's kernel and, during a step's call, its attempt (nil while
// the instance starts up).
type callState struct {
	k *kernel
	a *attempt
	// startVars holds the vars of a start-up call (a is nil then); they
	// end with it.
	startVars *vars
}

// vars returns the Extism vars of the call: the attempt's, or start-up's.
func (s *callState) vars() *vars {
	if s.a != nil {
		return &s.a.vars
	}
	if s.startVars == nil {
		s.startVars = &vars{}
	}
	return s.startVars
}

// vars are Extism's plugin variables (var_get, var_set), with Extism's
// semantics within one attempt: they start empty and end with it, so that
// nothing a step keeps outlives its attempt (state that must last goes
// through ctx_set, which is durable). Their size is bounded by
// abi.MaxVarBytes.
type vars struct {
	m     map[string][]byte
	bytes int
}

// varEntryBytes is what one var counts toward abi.MaxVarBytes beyond its
// key and value, as in Extism's go-sdk (a string and a slice header).
const varEntryBytes = 40

func (v *vars) get(key string) ([]byte, bool) {
	b, ok := v.m[key]
	return b, ok
}

func (v *vars) set(key string, value []byte, remove bool) error {
	old, had := v.m[key]
	n := v.bytes
	if had {
		n -= len(key) + len(old) + varEntryBytes
	}
	if remove {
		delete(v.m, key)
		v.bytes = n
		return nil
	}
	n += len(key) + len(value) + varEntryBytes
	if n > abi.MaxVarBytes {
		return fmt.Errorf("vars would hold %d bytes, the limit is %d", n, abi.MaxVarBytes)
	}
	if v.m == nil {
		v.m = make(map[string][]byte)
	}
	v.m[key] = bytes.Clone(value)
	v.bytes = n
	return nil
}

type callStateKey struct{}

func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(callStateKey{}).(*callState)
	return s
}

// kernelFunc is the shape of every Extism kernel function: it reads its
// arguments from stack and writes its result there, or returns an error
// when the guest broke the ABI.
type kernelFunc func(ctx context.Context, s *callState, stack []uint64) error

// instantiateKernel instantiates the "extism:host/env" module in rt.
func (h *Host) instantiateKernel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("extism:host/env")
	def := func(name string, fn kernelFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
			s := stateOf(ctx)
			if s == nil {
				panic(fmt.Errorf("%s called outside a 12fa call", name))
			}
			if err := fn(ctx, s, stack); err != nil {
				h.violation(s.a, name, err)
			}
		}), params, results).Export(name)
	}
	var (
		i32 = api.ValueTypeI32
		i64 = api.ValueTypeI64
		p0  = []api.ValueType{}
		p1  = []api.ValueType{i64}
		p2  = []api.ValueType{i64, i64}
	)
	def("alloc", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.alloc(st[0]); return nil }, p1, p1)
	def("free", func(_ context.Context, s *callState, st []uint64) error { s.k.freeBlock(st[0]); return nil }, p1, p0)
	def("length", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.length(st[0]); return nil }, p1, p1)
	def("length_unsafe", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.length(st[0]); return nil }, p1, p1)
	def("load_u8", func(_ context.Context, s *callState, st []uint64) error {
		b, err := s.k.bytes(st[0], 1)
		if err != nil {
			return err
		}
		st[0] = uint64(b[0])
		return nil
	}, p1, []api.ValueType{i32})
	def("load_u64", func(_ context.Context, s *callState, st []uint64) error {
		b, err := s.k.bytes(st[0], 8)
		if err != nil {
			return err
		}
		st[0] = binary.LittleEndian.Uint64(b)
		return nil
	}, p1, p1)
	def("store_u8", func(_ context.Context, s *callState, st []uint64) error {
		b, err := s.k.bytes(st[0], 1)
		if err != nil {
			return err
		}
		b[0] = byte(st[1])
		return nil
	}, []api.ValueType{i64, i32}, p0)
	def("store_u64", func(_ context.Context, s *callState, st []uint64) error {
		b, err := s.k.bytes(st[0], 8)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(b, st[1])
		return nil
	}, p2, p0)
	def("input_offset", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.input; return nil }, p0, p1)
	def("input_length", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.length(s.k.input); return nil }, p0, p1)
	def("input_load_u8", func(_ context.Context, s *callState, st []uint64) error {
		if st[0] >= s.k.length(s.k.input) {
			return fmt.Errorf("input offset %d is past the input's %d bytes", st[0], s.k.length(s.k.input))
		}
		st[0] = uint64(s.k.mem[s.k.input+st[0]])
		return nil
	}, p1, []api.ValueType{i32})
	def("input_load_u64", func(_ context.Context, s *callState, st []uint64) error {
		n := s.k.length(s.k.input)
		if st[0] >= n {
			return fmt.Errorf("input offset %d is past the input's %d bytes", st[0], n)
		}
		// A word that runs past the input reads zeros there.
		var w [8]byte
		copy(w[:], s.k.mem[s.k.input+st[0]:s.k.input+n])
		st[0] = binary.LittleEndian.Uint64(w[:])
		return nil
	}, p1, p1)
	def("input_set", func(_ context.Context, s *callState, st []uint64) error {
		if _, err := s.k.bytes(st[0], st[1]); err != nil {
			return err
		}
		return errors.New("a guest cannot replace its input")
	}, p2, p0)
	def("output_set", func(_ context.Context, s *callState, st []uint64) error {
		if _, err := s.k.bytes(st[0], st[1]); err != nil {
			return err
		}
		s.k.output, s.k.outputSet = [2]uint64{st[0], st[1]}, true
		return nil
	}, p2, p0)
	def("output_offset", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.output[0]; return nil }, p0, p1)
	def("output_length", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.output[1]; return nil }, p0, p1)
	def("error_set", func(_ context.Context, s *callState, st []uint64) error {
		if st[0] != 0 {
			if _, err := s.k.block(st[0]); err != nil {
				return err
			}
		}
		s.k.errBlock = st[0]
		return nil
	}, p1, p0)
	def("error_get", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.errBlock; return nil }, p0, p1)
	def("reset", func(_ context.Context, s *callState, st []uint64) error {
		// Extism's reset forgets every block, the input included; 12fa keeps
		// the input, which a step may read after resetting its scratch.
		in, _ := s.k.block(s.k.input)
		in = append([]byte(nil), in...)
		s.k.reset()
		return s.k.setInput(in)
	}, p0, p0)
	def("memory_bytes", func(_ context.Context, s *callState, st []uint64) error { st[0] = s.k.top; return nil }, p0, p1)
	def("config_get", func(_ context.Context, s *callState, st []uint64) error {
		key, err := s.k.block(st[0])
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		st[0] = 0
		if s.a == nil {
			return nil
		}
		if v, ok := s.a.req.Config[string(key)]; ok {
			off, err := s.k.write([]byte(v))
			if err != nil {
				return err
			}
			st[0] = off
		}
		return nil
	}, p1, p1)
	def("var_get", func(_ context.Context, s *callState, st []uint64) error {
		key, err := s.k.block(st[0])
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		v, ok := s.vars().get(string(key))
		s.k.freeBlock(st[0])
		st[0] = 0
		if ok {
			off, err := s.k.write(v)
			if err != nil {
				return err
			}
			st[0] = off
		}
		return nil
	}, p1, p1)
	def("var_set", func(_ context.Context, s *callState, st []uint64) error {
		key, err := s.k.block(st[0])
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		var value []byte
		if st[1] != 0 {
			if value, err = s.k.block(st[1]); err != nil {
				return fmt.Errorf("value: %w", err)
			}
		}
		if err := s.vars().set(string(key), value, st[1] == 0); err != nil {
			return err
		}
		s.k.freeBlock(st[0])
		if st[1] != 0 {
			s.k.freeBlock(st[1])
		}
		return nil
	}, p2, p0)
	def("http_request", extismHTTP, p2, p1)
	def("http_status_code", extismHTTPStatus, p0, []api.ValueType{i32})
	def("http_headers", extismHTTPHeaders, p0, p1)
	def("get_log_level", func(_ context.Context, s *callState, st []uint64) error { st[0] = 0; return nil }, p0, []api.ValueType{i32})
	for name, level := range map[string]abi.LogLevel{
		"log_trace": abi.LogTrace, "log_debug": abi.LogDebug, "log_info": abi.LogInfo,
		"log_warn": abi.LogWarn, "log_error": abi.LogError,
	} {
		def(name, func(_ context.Context, s *callState, st []uint64) error {
			msg, err := s.k.block(st[0])
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			if s.a != nil {
				if len(msg) > abi.MaxLogLineBytes {
					msg = msg[:abi.MaxLogLineBytes]
				}
				s.a.addLog(LogLine{Time: time.Now(), Level: level, Source: "log",
					Message: strings.ToValidUTF8(string(msg), "\uFFFD")})
			}
			s.k.freeBlock(st[0])
			return nil
		}, p1, p0)
	}
	_, err := b.Instantiate(ctx)
	return err
}
