// Package host loads step plugins and calls them in a sandbox.
//
// It is an Extism-compatible host built directly on wazero: plugins use
// Extism's guest ABI ("extism:host/env": alloc, input, output, error,
// config, logs), which host implements in Go (kernel.go), plus 12fa's own
// namespace (hostfuncs.go). A Host compiles each plugin once (cached on disk
// by wazero, keyed by the module's content hash) and checks the ABI it
// speaks.
//
// No call sees memory, globals or data another call left behind. An
// instance starts up once (the WASI reactor's _initialize, then the
// optional abi.ExportPrepare); when the plugin's code can change nothing
// but its memory and globals (see wasmcode.go), the instance is
// snapshotted right then, and after each clean call it is reset to that
// snapshot (memory copied back, every mutable global set back, kernel
// memory zeroed) and serves the next call. Any other instance (a call that
// trapped, timed out, exited or grew its memory; a plugin that mutates
// tables or segments; a call with file grants) is closed after its one
// call, and the next call gets a fresh instance, made ahead of time in a
// sequential run. A plugin's first instance in the process skips the
// warm-up (prepare and snapshot) and serves one call, so that a short run
// does not wait for it.
//
// The sandbox is deny-by-default: no environment, no arguments, no network
// (HTTP only through Request.HTTP, which the runner gives a step under its
// grants) and no file system unless the call grants directories (see Mount; they are served through os.Root, never as
// raw wazero directory mounts, which follow symlinks out of the grant).
// Every call has a wall-clock timeout that closes the module when it
// expires, and a memory cap in pages that wazero applies to the guest's
// linear memory and the kernel applies to its own, so an instance may hold
// up to twice the cap.
//
// The clock is the real one (WASI walltime and nanotime) and randomness
// comes from crypto/rand: steps are expected to be nondeterministic, and
// durability comes from the journal, not from replaying guest code.
//
// host imports abi and no other 12fa package. What it needs from the
// outside (the run's context) it declares as small interfaces.
//
// # Caveats
//
//   - Output, logs and captured stderr/stdout are bounded per call (see abi's
//     limits); a call that exceeds the output bound fails.
//   - Host functions never panic the host: a bad call records a *CallError and
//     traps the guest; wazero turns the trap into the call's error.
//   - A reset instance keeps what lives outside its memory and globals:
//     only its WASI file table, which without file grants holds just stdin,
//     stdout and stderr, and closing those is a no-op.
package host
