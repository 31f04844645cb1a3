package jsonenc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNoHTMLEscaping(t *testing.T) {
	raw := json.RawMessage(`{"a":"<b>&</b>"}`)
	got, err := Marshal(struct {
		S string          `json:"s"`
		R json.RawMessage `json:"r"`
	}{"<&>", raw})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"s":"<&>","r":{"a":"<b>&</b>"}}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if s := String(strings.Repeat("<", 100)); len(s) != 102 {
		t.Fatalf("100 '<' encode to %d bytes, want 102", len(s))
	}
	var b bytes.Buffer
	if err := Append(&b, 1); err != nil || b.String() != "1\n" {
		t.Fatalf("Append: %q, %v", b.String(), err)
	}
	ind, _ := MarshalIndent(map[string]string{"k": "<"})
	if string(ind) != "{\n  \"k\": \"<\"\n}" {
		t.Fatalf("MarshalIndent: %q", ind)
	}
}
