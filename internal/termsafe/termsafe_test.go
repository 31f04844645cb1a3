package termsafe

import "testing"

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓":      "plain text, ünïcode ✓",
		"red \x1b[31mALERT\x1b[0m":   `red \x1b[31mALERT\x1b[0m`,
		"done\rFAILED":               `done\rFAILED`,
		"one\ntwo\tthree\x00":        `one\ntwo\tthree\x00`,
		"csi \u009b2J and del \x7f":  `csi \u009b2J and del \x7f`,
		"abc\u202edcba\u2066x\u2069": `abc\u202edcba\u2066x\u2069`,
		"zero\u200bwidth\ufeff":      `zero\u200bwidth\ufeff`,
		"bad \xff\xfe utf-8":         `bad \xff\xfe utf-8`,
		"title \x1b]0;pwned\x07":     `title \x1b]0;pwned\x07`,
		"line\u2028separator":        `line\u2028separator`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("a\x1b[31m\r\n\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("Text(%q) = %q keeps control byte %#x", s, out, c)
			}
		}
		if !cleanUTF8(out) {
			t.Fatalf("Text(%q) = %q is not clean", s, out)
		}
	})
}
