// Package jsrunner holds 12fa's JS step runner: a Wasm plugin (built from
// pdk/js/runner.c with QuickJS) that runs a step written in JavaScript. A
// manifest step whose plugin is a .js file runs in it, with the script
// handed over through two reserved config keys.
package jsrunner

import (
	_ "embed"

	"path/filepath"
	"strings"

	"github.com/12fa/12fa/abi"
)

// Wasm is the runner plugin; `make wasm` rebuilds it.
//
//go:embed js-runner.wasm
var Wasm []byte

// The config keys that hand the runner its script and the name of the
// script's function to call (abi.ReservedConfigPrefix keeps them 12fa's).
const (
	ConfigScript     = abi.ReservedConfigPrefix + "script"
	ConfigScriptName = abi.ReservedConfigPrefix + "script_name"
	ConfigFunction   = abi.ReservedConfigPrefix + "function"
)

// Export is the runner's export that runs a script's function.
const Export = abi.DefaultFunction

// IsScript reports whether a step's plugin path names a JavaScript step.
func IsScript(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".js" || ext == ".mjs" || ext == ".cjs"
}

// Config returns the step's config with the script added: its source, its
// file name (for error messages and stack traces) and the function to call
// (the step's function, abi.DefaultFunction when empty).
func Config(base map[string]string, name string, src []byte, function string) map[string]string {
	c := make(map[string]string, len(base)+3)
	for k, v := range base {
		c[k] = v
	}
	if function == "" {
		function = abi.DefaultFunction
	}
	c[ConfigScript] = string(src)
	c[ConfigScriptName] = filepath.Base(name)
	c[ConfigFunction] = function
	return c
}
