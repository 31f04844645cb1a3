package manifest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps the keys of a manifest to their line numbers, so that
// errors found after decoding can still name a line. Keys are dotted paths
// with array tables numbered from 0: "workflow", "step.2", "step.2.timeout".
func positions(b []byte) (map[string]int, error) {
	pos := map[string]int{}
	p := unstable.Parser{}
	p.Reset(b)
	counts := map[string]int{}
	var prefix, lastArray string
	// Offsets of line starts, to turn a byte offset into a line number by
	// binary search (the parser's own Shape rescans from the start).
	starts := []int{0}
	for i, c := range b {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	line := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 {
			return 0
		}
		off := int(n.Raw.Offset)
		i, _ := slices.BinarySearch(starts, off+1)
		return i
	}
	keyOf := func(n *unstable.Node) (string, *unstable.Node) {
		var parts []string
		var first *unstable.Node
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if first == nil {
				first = k
			}
			parts = append(parts, string(k.Data))
		}
		return strings.Join(parts, "."), first
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			k, kn := keyOf(e)
			// A subtable of the latest array table ([step.allow] after a
			// [[step]]) belongs to its last element.
			if lastArray != "" {
				if rest, ok := strings.CutPrefix(k, lastArray+"."); ok {
					k = fmt.Sprintf("%s.%d.%s", lastArray, counts[lastArray]-1, rest)
				}
			}
			prefix = k
			pos[k] = line(kn)
		case unstable.ArrayTable:
			k, kn := keyOf(e)
			prefix = fmt.Sprintf("%s.%d", k, counts[k])
			counts[k]++
			lastArray = k
			pos[prefix] = line(kn)
		case unstable.KeyValue:
			k, kn := keyOf(e)
			if prefix != "" {
				k = prefix + "." + k
			}
			pos[k] = line(kn)
		}
	}
	return pos, p.Error()
}
