package host

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// moduleInterface is what the host reads of a Wasm binary before compiling
// it: the functions it imports and the exports it could call as a step.
type moduleInterface struct {
	imports []funcImport
	// exports holds the exported functions of type () -> () or () -> i32.
	exports map[string]bool
	// exportNames holds every export's name, of any kind.
	exportNames map[string]bool
	// otherImports names the imports that are not functions (tables,
	// memories, globals, tags): no module 12fa provides exports one.
	otherImports []string
	// hsInit: the module exports GHC's hs_init of type (i32, i32) -> (),
	// which starts the Haskell runtime.
	hsInit bool

	// What decides whether an instance can be reset to a snapshot (see
	// snapshot.go): the globals and memories the module defines and
	// imports, where its export section is, and the first instruction
	// found that changes instance state other than memory and globals.
	importedGlobals, importedMemories, importedTables int
	mutableImportedGlobal                             bool
	globals                                           []definedGlobal
	memories                                          int
	exportSection                                     [2]int // content start, end; zero when absent
	stateChange                                       string
}

// definedGlobal is a global the module defines, by its index in the global
// index space (imported globals first).
type definedGlobal struct {
	index   uint32
	mutable bool
}

type funcImport struct{ module, name string }

// readInterface reads the type, import, function and export sections of a
// Wasm binary, skipping everything else (code included), so that checking a
// plugin's ABI costs microseconds, not a compile. Malformed input is an
// error; the full validation is the compiler's.
func readInterface(b []byte) (*moduleInterface, error) {
	r := &wasmReader{b: b}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a Wasm binary (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != 1 {
		return nil, fmt.Errorf("unsupported Wasm binary version %d", v)
	}
	r.off = 8
	type sig struct{ params, results []byte }
	var (
		types     []sig
		funcTypes []uint32 // type index of every function: imported, then defined
		mi        = &moduleInterface{exports: map[string]bool{}, exportNames: map[string]bool{}}
		exports   []struct {
			name string
			idx  uint32
		}
	)
	for r.off < len(b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			break
		}
		end := r.off + int(size)
		if end > len(b) || end < r.off {
			return nil, fmt.Errorf("section %d runs past the end", id)
		}
		switch id {
		case 1: // type
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				if form := r.byte(); form != 0x60 {
					return nil, fmt.Errorf("type section: unsupported type form %#x", form)
				}
				var s sig
				s.params = r.valtypes()
				s.results = r.valtypes()
				types = append(types, s)
			}
		case 2: // import
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				module, name := r.name(), r.name()
				switch kind := r.byte(); kind {
				case 0x00:
					funcTypes = append(funcTypes, r.u32())
					mi.imports = append(mi.imports, funcImport{module, name})
				case 0x01: // table: reftype + limits
					mi.otherImports = append(mi.otherImports, "table "+module+"."+name)
					r.valtype()
					r.limits()
					mi.importedTables++
				case 0x02: // memory
					mi.otherImports = append(mi.otherImports, "memory "+module+"."+name)
					r.limits()
					mi.importedMemories++
				case 0x03: // global: valtype + mutability
					mi.otherImports = append(mi.otherImports, "global "+module+"."+name)
					r.valtype()
					if r.byte() == 1 {
						mi.mutableImportedGlobal = true
					}
					mi.importedGlobals++
				case 0x04: // tag: attribute + type index
					mi.otherImports = append(mi.otherImports, "tag "+module+"."+name)
					r.byte()
					r.u32()
				default:
					return nil, fmt.Errorf("import %s.%s: unknown kind %#x", module, name, kind)
				}
			}
		case 3: // function
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				funcTypes = append(funcTypes, r.u32())
			}
		case 5: // memory
			mi.memories += int(r.u32())
		case 6: // global
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.valtype()
				mut := r.byte()
				mi.globals = append(mi.globals, definedGlobal{index: uint32(mi.importedGlobals + len(mi.globals)), mutable: mut == 1})
				r.constExpr()
			}
		case 10: // code
			mi.stateChange = r.scanCode(end)
		case 7: // export
			mi.exportSection = [2]int{r.off, end}
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				name := r.name()
				mi.exportNames[name] = true
				kind := r.byte()
				idx := r.u32()
				if kind == 0x00 {
					exports = append(exports, struct {
						name string
						idx  uint32
					}{name, idx})
				}
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		r.off = end
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, e := range exports {
		if int(e.idx) >= len(funcTypes) || int(funcTypes[e.idx]) >= len(types) {
			return nil, fmt.Errorf("export %q: function %d has no known type", e.name, e.idx)
		}
		t := types[funcTypes[e.idx]]
		if e.name == "hs_init" && string(t.params) == "\x7f\x7f" && len(t.results) == 0 {
			mi.hsInit = true
		}
		if len(t.params) == 0 && (len(t.results) == 0 || (len(t.results) == 1 && t.results[0] == 0x7f)) {
			mi.exports[e.name] = true
		}
	}
	return mi, nil
}

// wasmReader reads LEB128 integers and vectors; the first error sticks.
type wasmReader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of binary")

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *wasmReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || n > 5 || v > 0xffffffff {
		r.err = errors.New("bad LEB128 integer")
		return 0
	}
	r.off += n
	return uint32(v)
}

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if uint64(r.off)+uint64(n) > uint64(len(r.b)) {
		r.err = errShort
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// valtype reads one value type; reference types of the GC proposal carry
// a heap type after them.
func (r *wasmReader) valtype() byte {
	t := r.byte()
	if t == 0x63 || t == 0x64 {
		r.s33()
	}
	return t
}

func (r *wasmReader) valtypes() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		if r.err == nil {
			r.err = errShort
		}
		return nil
	}
	ts := make([]byte, 0, n)
	for ; n > 0 && r.err == nil; n-- {
		ts = append(ts, r.valtype())
	}
	return ts
}

func (r *wasmReader) s33() {
	if r.err != nil {
		return
	}
	_, n := binary.Varint(r.b[r.off:]) // only its length matters here
	if n <= 0 || n > 5 {
		r.err = errors.New("bad LEB128 integer")
		return
	}
	r.off += n
}

func (r *wasmReader) limits() {
	flags := r.byte()
	r.u64()
	if flags&1 != 0 {
		r.u64()
	}
}

func (r *wasmReader) u64() {
	if r.err != nil {
		return
	}
	_, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errors.New("bad LEB128 integer")
		return
	}
	r.off += n
}
