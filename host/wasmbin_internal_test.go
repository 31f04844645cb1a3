package host

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestReadInterface_MatchesWazero: for every example plugin, the imports and
// step-shaped exports readInterface finds are those wazero finds.
func TestReadInterface_MatchesWazero(t *testing.T) {
	files, _ := filepath.Glob("../plugins/examples/*/*.wasm")
	if len(files) < 5 {
		t.Fatalf("only %d example plugins found", len(files))
	}
	// The interpreter reads and validates a module as the compiler does,
	// in a fraction of the time (this test compiles every example).
	rt := wazero.NewRuntimeWithConfig(t.Context(), wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(t.Context())
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			mi, err := readInterface(b)
			if err != nil {
				t.Fatal(err)
			}
			m, err := rt.CompileModule(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			var want []funcImport
			for _, d := range m.ImportedFunctions() {
				mod, name, _ := d.Import()
				want = append(want, funcImport{mod, name})
			}
			if !slices.Equal(mi.imports, want) {
				t.Errorf("imports %v, wazero says %v", mi.imports, want)
			}
			wantExp := map[string]bool{}
			for name, d := range m.ExportedFunctions() {
				r := d.ResultTypes()
				if len(d.ParamTypes()) == 0 && (len(r) == 0 || (len(r) == 1 && r[0] == api.ValueTypeI32)) {
					wantExp[name] = true
				}
			}
			if len(wantExp) != len(mi.exports) {
				t.Errorf("exports %v, wazero says %v", mi.exports, wantExp)
			}
			for name := range wantExp {
				if !mi.exports[name] {
					t.Errorf("export %q missing", name)
				}
			}
			// The copy with every mutable global exported compiles (wazero
			// checks each export's kind and index) and names them.
			// (Go plugins are megabytes each and compile slowly under -race:
			// one of them, gonoop, stands for all.)
			if ok, _ := mi.resettable(); !ok || (len(b) > 2<<20 && filepath.Base(f) != "gonoop.wasm") {
				return
			}
			rw, names, err := withGlobalExports(b, mi)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.CompileModule(t.Context(), rw); err != nil {
				t.Fatalf("rewritten module: %v", err)
			}
			mi2, err := readInterface(rw)
			if err != nil {
				t.Fatal(err)
			}
			var mutable int
			for _, g := range mi.globals {
				if g.mutable {
					mutable++
				}
			}
			if len(names) != mutable || len(mi2.exportNames) != len(mi.exportNames)+mutable {
				t.Fatalf("%d names for %d mutable globals; %d exports, had %d", len(names), mutable, len(mi2.exportNames), len(mi.exportNames))
			}
			for _, n := range names {
				if !mi2.exportNames[n] {
					t.Errorf("global %s not exported", n)
				}
			}
		})
	}
}

func FuzzReadInterface(f *testing.F) {
	for _, name := range []string{"noop", "badptr", "abiv2", "marker", "stain", "tableset"} {
		b, err := os.ReadFile("../plugins/examples/wat/" + name + ".wasm")
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := readInterface(b)
		if err == nil {
			if ok, _ := mi.resettable(); ok {
				_, _, _ = withGlobalExports(b, mi)
			}
		}
	})
}
