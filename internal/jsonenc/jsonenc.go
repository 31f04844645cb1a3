// Package jsonenc is the one way 12fa encodes the JSON it stores: like
// encoding/json, but without HTML escaping. encoding/json turns each '<',
// '>' and '&' into a six-byte \u003c-style sequence, so a record could be
// six times the size every limit was checked against; without it, a value
// that is already JSON (an output, a context value) is written byte for
// byte, and what a limit measures is what reaches the disk.
//
// It imports only the standard library.
package jsonenc

import (
	"bytes"
	"encoding/json"
)

// Marshal returns the JSON encoding of v, without HTML escaping and without
// a trailing newline.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := Append(&b, v); err != nil {
		return nil, err
	}
	out := b.Bytes()
	return out[:len(out)-1], nil
}

// MarshalIndent is Marshal with two-space indentation, for files people
// read.
func MarshalIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := b.Bytes()
	return out[:len(out)-1], nil
}

// Append writes the JSON encoding of v to b, without HTML escaping,
// followed by a newline (one JSONL record). On error b may hold part of it;
// the caller truncates.
func Append(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// String returns s as a JSON string, without HTML escaping.
func String(s string) []byte {
	b, _ := Marshal(s) // a string always encodes
	return b
}
