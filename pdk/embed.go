// Package pdk carries the guest kits' files that `12fa new step` copies
// into a new step: the C header, the Rust crate and the AssemblyScript kit
// (the Go kit is a module of its own, pdk/go; the JS runner is embedded in
// internal/jsrunner).
package pdk

import "embed"

// Files holds c/12fa.h, rust/src/*.rs and the AssemblyScript kit.
//
//go:embed c/12fa.h rust/src/lib.rs rust/src/json.rs as/index.ts as/json.ts as/package.json as/package-lock.json
var Files embed.FS
