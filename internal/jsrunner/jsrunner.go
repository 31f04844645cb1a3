// Package jsrunner holds 12fa's JS step runner: a Wasm plugin (built from
// pdk/js/runner.c with QuickJS) that runs a step written in JavaScript. A
// manifest step whose plugin is a .js file runs in it, with the script
// handed over through two reserved config keys.
package jsrunner

import (
	_ "embed"
	"path/filepath"
	"strings"
)

// Wasm is the runner plugin; `make wasm` rebuilds it.
//
//go:embed js-runner.wasm
var Wasm []byte

// The config keys that hand the runner its script. Config keys starting
// with ReservedPrefix belong to 12fa.
const (
	ReservedPrefix   = "12fa."
	ConfigScript     = ReservedPrefix + "script"
	ConfigScriptName = ReservedPrefix + "script_name"
)

// IsScript reports whether a step's plugin path names a JavaScript step.
func IsScript(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".js" || ext == ".mjs" || ext == ".cjs"
}

// Config returns the step's config with the script added: its source and
// its file name (for error messages and stack traces).
func Config(base map[string]string, name string, src []byte) map[string]string {
	c := make(map[string]string, len(base)+2)
	for k, v := range base {
		c[k] = v
	}
	c[ConfigScript] = string(src)
	c[ConfigScriptName] = filepath.Base(name)
	return c
}
