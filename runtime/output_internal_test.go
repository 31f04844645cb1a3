package runtime

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestNormalizeOutput(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "null"},
		{"  \n", "null"},
		{`{"a": [1, 2]}`, `{"a":[1,2]}`},
		{"plain words", `"plain words"`},
		{"{not json", `"{not json"`},
	}
	for _, tc := range tests {
		got, err := normalizeOutput([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("normalizeOutput(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := normalizeOutput([]byte{0xff, 0xfe}); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

// FuzzNormalizeOutput: whatever a guest sets as its output, the journal gets
// one valid JSON document on one line, or the step fails.
func FuzzNormalizeOutput(f *testing.F) {
	for _, s := range []string{"", "null", `{"a":1}`, "text", "[1,\n2]", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := normalizeOutput(b)
		if err != nil {
			if utf8.Valid(b) {
				t.Fatalf("valid UTF-8 refused: %q", b)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON", out)
		}
		for _, c := range out {
			if c == '\n' {
				t.Fatalf("output %q spans lines", out)
			}
		}
	})
}
