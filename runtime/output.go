package runtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/12fa/12fa/host"
	"github.com/12fa/12fa/internal/jsonenc"
)

// contextMap is a run's workflow context as the host reads it.
type contextMap map[string]json.RawMessage

func (c contextMap) Get(key string) (json.RawMessage, bool) {
	v, ok := c[key]
	return v, ok
}

// bytes is what the context counts toward abi.MaxContextBytes.
func (c contextMap) bytes() int {
	n := 0
	for k, v := range c {
		n += host.ContextEntryBytes(k, v)
	}
	return n
}

// normalizeOutput makes a guest's output a JSON document, losing nothing:
// JSON stays as it is (compacted), other UTF-8 text becomes a JSON string,
// nothing becomes null, and bytes that are not UTF-8 (binary) become a JSON
// string of their base64, with binary set.
func normalizeOutput(b []byte) (out json.RawMessage, binary bool) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return json.RawMessage("null"), false
	}
	if utf8.Valid(t) && json.Valid(t) {
		var buf bytes.Buffer
		_ = json.Compact(&buf, t) // valid JSON always compacts
		return buf.Bytes(), false
	}
	if !utf8.Valid(b) {
		return jsonenc.String(base64.StdEncoding.EncodeToString(b)), true
	}
	return jsonenc.String(string(b)), false
}
