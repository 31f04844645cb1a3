package abi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/12fa/12fa/abi"
)

// TestCausesListed parses cause.go: every Cause constant it declares has a
// doc comment and is one Known reports, and no two share a name.
func TestCausesListed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "cause.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Cause" {
				continue
			}
			lit := v.Values[0].(*ast.BasicLit)
			name := lit.Value[1 : len(lit.Value)-1]
			if prev, dup := names[name]; dup {
				t.Errorf("%s and %s are both %q", prev, v.Names[0].Name, name)
			}
			names[name] = v.Names[0].Name
			if v.Doc == nil {
				t.Errorf("%s has no doc comment", v.Names[0].Name)
			}
			if !abi.Cause(name).Known() {
				t.Errorf("%s (%q) is not in causes", v.Names[0].Name, name)
			}
		}
	}
	if len(names) < 20 || len(names) != len(abi.Causes()) {
		t.Errorf("cause.go declares %d causes, Causes returns %d", len(names), len(abi.Causes()))
	}
	if abi.Cause("no_such_cause").Known() {
		t.Error("an unknown name is Known")
	}
}
