//go:build wasip1 || tinygo.wasm

package pdk

// Imports of the Extism kernel (module "extism:host/env") and of 12fa's
// host functions (abi.Namespace). Only fixed-size integer types cross the
// boundary, so this compiles with Go's wasip1 port and with TinyGo.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func extismInputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func extismInputLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env length
func extismLength(offset uint64) uint64

//go:wasmimport extism:host/env alloc
func extismAlloc(n uint64) uint64

//go:wasmimport extism:host/env free
func extismFree(offset uint64)

//go:wasmimport extism:host/env output_set
func extismOutputSet(offset, length uint64)

//go:wasmimport extism:host/env error_set
func extismErrorSet(offset uint64)

//go:wasmimport extism:host/env config_get
func extismConfigGet(offset uint64) uint64

//go:wasmimport extism:host/env load_u8
func extismLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env load_u64
func extismLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env store_u8
func extismStoreU8(offset uint64, v uint32)

//go:wasmimport extism:host/env store_u64
func extismStoreU64(offset uint64, v uint64)

//go:wasmimport 12fa:v1 ctx_get
func hostCtxGet(key uint64) uint64

//go:wasmimport 12fa:v1 ctx_set
func hostCtxSet(key, value uint64) uint32

//go:wasmimport 12fa:v1 log
func hostLog(level int32, message uint64) uint32

//go:wasmimport 12fa:v1 input_request
func hostInputRequest(req uint64) uint64

//go:wasmimport 12fa:v1 notify
func hostNotify(doc uint64) uint32

//go:wasmimport 12fa:v1 http
func hostHTTP(req uint64) uint64

//go:wasmimport 12fa:v1 exec
func hostExec(req uint64) uint64

// input copies the call's input out of the kernel.
func input() []byte {
	n := extismInputLength()
	b := make([]byte, n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		putU64(b[i:], extismInputLoadU64(i))
	}
	for ; i < n; i++ {
		b[i] = byte(extismInputLoadU8(i))
	}
	return b
}

// alloc copies b into a new kernel block and returns its offset.
func alloc(b []byte) uint64 {
	off := extismAlloc(uint64(len(b)))
	n := uint64(len(b))
	var i uint64
	for ; i+8 <= n; i += 8 {
		extismStoreU64(off+i, getU64(b[i:]))
	}
	for ; i < n; i++ {
		extismStoreU8(off+i, uint32(b[i]))
	}
	return off
}

// load copies the kernel block at off and frees it.
func load(off uint64) []byte {
	n := extismLength(off)
	b := make([]byte, n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		putU64(b[i:], extismLoadU64(off+i))
	}
	for ; i < n; i++ {
		b[i] = byte(extismLoadU8(off + i))
	}
	extismFree(off)
	return b
}

func putU64(b []byte, v uint64) {
	_ = b[7]
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func getU64(b []byte) uint64 {
	_ = b[7]
	var v uint64
	for i := 0; i < 8; i++ {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

func setOutput(b []byte) {
	extismOutputSet(alloc(b), uint64(len(b)))
}

func setError(msg []byte) {
	extismErrorSet(alloc(msg))
}
