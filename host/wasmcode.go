package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// This file reads just enough of a module's code to know whether resetting
// an instance's memory and mutable globals resets all of its state. Wasm
// instance state is memories, globals, tables and the dropped flags of data
// and element segments; only the first two can be read and written through
// wazero's public API, so a module with any instruction that changes the
// others is never reset: each of its calls gets a fresh instance.

// scanCode walks every function body of the code section (which ends at
// end) and returns a description of the first instruction that changes
// instance state other than memory and globals, or "" when there is none.
// A malformed body sets r.err; an opcode it does not know is reported as a
// state change (the safe answer). The common one-byte opcodes with LEB128
// immediates are skipped inline: a Go plugin has megabytes of code, and
// this runs on every process's first load of it.
func (r *wasmReader) scanCode(end int) string {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		size := r.u32()
		bodyEnd := r.off + int(size)
		if r.err != nil || bodyEnd > end || bodyEnd < r.off {
			r.err = errShort
			return ""
		}
		for locals := r.u32(); locals > 0 && r.err == nil; locals-- {
			r.u32()
			r.valtype()
		}
		b := r.b[:bodyEnd]
		for r.off < bodyEnd && r.err == nil {
			i := r.off
			switch op := b[i]; {
			case simpleOp[op]:
				r.off = i + 1
				continue
			case lebOp[op]:
				i++
				for i < bodyEnd && b[i]&0x80 != 0 {
					i++
				}
				r.off = i + 1
				continue
			case op >= 0x28 && op <= 0x3e && i+1 < bodyEnd && b[i+1]&0xc0 == 0:
				// a load or store whose one-byte alignment has no memory index
				i += 2
				for i < bodyEnd && b[i]&0x80 != 0 {
					i++
				}
				r.off = i + 1
				continue
			case op >= 0x02 && op <= 0x04 && i+1 < bodyEnd && (b[i+1] == 0x40 || b[i+1] >= 0x7b && b[i+1] <= 0x7f):
				r.off = i + 2 // block, loop or if with an empty or value block type
				continue
			}
			if what := r.instr(); what != "" {
				r.off = end
				return what
			}
		}
		if r.err == nil && r.off != bodyEnd {
			r.err = fmt.Errorf("a function body's instructions run past its end")
		}
	}
	return ""
}

// simpleOp marks opcodes without immediates; lebOp those with exactly one
// LEB128 immediate (instr handles every opcode; these are shortcuts).
var simpleOp, lebOp = func() (s, l [256]bool) {
	for op := 0x45; op <= 0xc4; op++ {
		s[op] = true // numeric instructions
	}
	for _, op := range []int{0x00, 0x01, 0x05, 0x0b, 0x0f, 0x1a, 0x1b, 0xd1} {
		s[op] = true
	}
	for _, op := range []int{0x0c, 0x0d, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x3f, 0x40, 0x41, 0x42, 0xd2} {
		l[op] = true
	}
	return s, l
}()

// constExpr skips a constant expression (a global's initialiser), which
// ends with the end opcode.
func (r *wasmReader) constExpr() {
	for r.err == nil {
		if r.off < len(r.b) && r.b[r.off] == 0x0b {
			r.off++
			return
		}
		if what := r.instr(); what != "" {
			r.err = fmt.Errorf("constant expression: %s", what)
		}
	}
}

// instr skips one instruction and its immediates. It returns a non-empty
// description when the instruction changes a table or a segment, or is
// unknown.
func (r *wasmReader) instr() string {
	op := r.byte()
	switch {
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
		// unreachable nop else end return drop select ref.is_null
	case op >= 0x02 && op <= 0x04: // block loop if: a block type
		r.blockType()
	case op == 0x0c, op == 0x0d, op == 0x10, op == 0xd2, op == 0x25, op >= 0x20 && op <= 0x24:
		// br br_if call ref.func table.get local.* global.*
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		r.valtypes()
	case op == 0x26:
		return "table.set"
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.leb(5)
	case op == 0x42: // i64.const
		r.leb(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op >= 0x45 && op <= 0xc4: // numeric instructions
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xfc:
		return r.instrFC()
	case op == 0xfd:
		return r.instrFD()
	default:
		if r.err != nil {
			return ""
		}
		return "opcode " + strconv.Itoa(int(op))
	}
	return ""
}

func (r *wasmReader) instrFC() string {
	sub := r.u32()
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8:
		return "memory.init"
	case sub == 9:
		return "data.drop"
	case sub == 10: // memory.copy
		r.u32()
		r.u32()
	case sub == 11: // memory.fill
		r.u32()
	case sub == 12:
		return "table.init"
	case sub == 13:
		return "elem.drop"
	case sub == 14:
		return "table.copy"
	case sub == 15:
		return "table.grow"
	case sub == 16: // table.size
		r.u32()
	case sub == 17:
		return "table.fill"
	default:
		if r.err != nil {
			return ""
		}
		return "opcode 0xfc " + strconv.Itoa(int(sub))
	}
	return ""
}

// instrFD skips a SIMD instruction.
func (r *wasmReader) instrFD() string {
	sub := r.u32()
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 255: // every other SIMD instruction has no immediate
	default:
		if r.err != nil {
			return ""
		}
		return "opcode 0xfd " + strconv.Itoa(int(sub))
	}
	return ""
}

func (r *wasmReader) blockType() {
	if r.err != nil || r.off >= len(r.b) {
		r.err = errShort
		return
	}
	switch c := r.b[r.off]; {
	case c == 0x40, c >= 0x6f && c <= 0x7f:
		r.off++
	default:
		r.leb(5) // a type index, as a signed 33-bit integer
	}
}

// memarg skips an alignment (whose bit 6 says a memory index follows) and
// an offset.
func (r *wasmReader) memarg() {
	if r.u32()&(1<<6) != 0 {
		r.u32()
	}
	r.leb(10)
}

// leb skips a LEB128 integer of at most max bytes, signed or not.
func (r *wasmReader) leb(max int) {
	for i := 0; r.err == nil; i++ {
		if i == max {
			r.err = errors.New("bad LEB128 integer")
			return
		}
		if r.byte()&0x80 == 0 {
			return
		}
	}
}

func (r *wasmReader) skip(n int) {
	if r.err != nil {
		return
	}
	if r.off+n > len(r.b) {
		r.err = errShort
		return
	}
	r.off += n
}

// snapshotGlobalPrefix names the exports withGlobalExports adds.
const snapshotGlobalPrefix = "12fa:global:"

// withGlobalExports returns a copy of the binary whose export section also
// exports every mutable global the module defines, under
// snapshotGlobalPrefix and the global's index, so that their values can be
// read and reset through wazero's public API. It returns the names added.
// The module must have an export section.
func withGlobalExports(b []byte, mi *moduleInterface) ([]byte, []string, error) {
	start, end := mi.exportSection[0], mi.exportSection[1]
	if end == 0 {
		return nil, nil, fmt.Errorf("no export section")
	}
	count, n := binary.Uvarint(b[start:end])
	if n <= 0 {
		return nil, nil, fmt.Errorf("export section: bad count")
	}
	var names []string
	var entries []byte
	for _, g := range mi.globals {
		if !g.mutable {
			continue
		}
		name := snapshotGlobalPrefix + strconv.Itoa(int(g.index))
		if mi.exportNames[name] {
			return nil, nil, fmt.Errorf("the module already exports %q", name)
		}
		names = append(names, name)
		entries = binary.AppendUvarint(entries, uint64(len(name)))
		entries = append(entries, name...)
		entries = append(entries, 0x03) // global
		entries = binary.AppendUvarint(entries, uint64(g.index))
	}
	content := binary.AppendUvarint(nil, count+uint64(len(names)))
	content = append(content, b[start+n:end]...)
	content = append(content, entries...)
	// The section id and size precede start; the size is a LEB128 ending
	// just before it.
	sizeStart := start - 1
	for sizeStart > 0 && b[sizeStart-1]&0x80 != 0 {
		sizeStart--
	}
	out := make([]byte, 0, len(b)+len(entries)+8)
	out = append(out, b[:sizeStart]...)
	out = binary.AppendUvarint(out, uint64(len(content)))
	out = append(out, content...)
	out = append(out, b[end:]...)
	return out, names, nil
}

// resettable reports whether resetting memory and mutable globals resets
// all of an instance's state, and if not, why.
func (mi *moduleInterface) resettable() (bool, string) {
	switch {
	case mi.stateChange != "":
		return false, "its code uses " + mi.stateChange
	case mi.importedMemories > 0, mi.importedTables > 0, mi.mutableImportedGlobal:
		return false, "it imports a memory, a table or a mutable global"
	case mi.memories > 1:
		return false, "it has more than one memory"
	case mi.exportSection[1] == 0:
		return false, "it has no export section"
	}
	return true, ""
}
