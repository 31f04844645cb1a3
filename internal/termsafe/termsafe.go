// Package termsafe makes text from a guest safe to show on a terminal. A
// step may log, print, fail or ask with any bytes, and a terminal obeys the
// control characters among them: an escape sequence can recolour, move the
// cursor or retitle the window, a carriage return or a newline can
// overwrite or forge a line, and Unicode's bidirectional controls can make
// text read other than it is. Text shows each such character as a visible
// escape instead, so that what a person reads is what the guest sent.
// Machine output (--json) keeps the exact strings and does not use this.
//
// It imports only the standard library.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text returns s with every control character (C0, DEL, C1), every
// bidirectional or invisible formatting character and every byte that is
// not UTF-8 written as a Go-style escape (\n, \r, \t, \x1b, \u202e …), on
// one line.
func Text(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case deceptive(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean reports whether s needs no escaping (the common case, checked
// without allocating).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			if c >= 0x80 {
				return cleanUTF8(s[i:])
			}
			return false
		}
	}
	return true
}

func cleanUTF8(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r < 0x20 || r == 0x7f || deceptive(r) {
			return false
		}
		i += n
	}
	return true
}

// deceptive reports the non-ASCII characters a terminal or a reader could be
// fooled by: C1 controls (0x9b is a CSI on some terminals), bidirectional
// embeddings, overrides and isolates, zero-width and other invisible
// formatting characters, line and paragraph separators.
func deceptive(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x00ad, r == 0x061c, r == 0x180e, r == 0xfeff:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2060 && r <= 0x206f:
		return true
	case r >= 0xfff9 && r <= 0xfffb:
		return true
	}
	return false
}

// FirstLine is Text of the first line of s, cut at 200 bytes (a summary of
// a guest's error, say).
func FirstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = strings.ToValidUTF8(line[:200], "") + "…"
	}
	return Text(line)
}

// Lines is Text of each line of s, the newlines kept: multi-line guest
// text (a log entry, an error) shown where newlines cannot forge
// anything, as in an HTML <pre>.
func Lines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Text(l)
	}
	return strings.Join(lines, "\n")
}
