package runtime

import (
	"bytes"
	"encoding/base64"
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
		got, binary := normalizeOutput([]byte(tc.in))
		if binary || string(got) != tc.want {
			t.Errorf("normalizeOutput(%q) = %s, %v; want %s", tc.in, got, binary, tc.want)
		}
	}
	if got, binary := normalizeOutput([]byte{0xff, 0xfe, 0}); !binary || string(got) != `"//4A"` {
		t.Errorf("binary output recorded as %s (binary %v), want its base64", got, binary)
	}
}

// FuzzNormalizeOutput: whatever a guest sets as its output, the journal gets
// one valid JSON document on one line, or the step fails.
func FuzzNormalizeOutput(f *testing.F) {
	for _, s := range []string{"", "null", `{"a":1}`, "text", "[1,\n2]", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, binary := normalizeOutput(b)
		if binary == utf8.Valid(b) {
			t.Fatalf("%q recorded as binary %v", b, binary)
		}
		if binary {
			var s string
			if err := json.Unmarshal(out, &s); err != nil {
				t.Fatal(err)
			}
			if back, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(back, b) {
				t.Fatalf("binary output %q not kept: %q, %v", b, back, err)
			}
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
