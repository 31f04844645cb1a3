// Package host loads step plugins and calls them in a sandbox.
//
// It sits on extism/go-sdk and wazero. A Host compiles each plugin once
// (cached on disk by wazero, keyed by the module's content hash), checks the
// ABI it speaks, and makes a fresh instance for every call, so that no call
// sees memory or globals another call left behind. An instance is closed
// after its call, whatever the outcome.
//
// The sandbox is deny-by-default: no environment, no arguments, no network
// (Extism's AllowedHosts stays empty) and no file system unless the call
// grants directories (see Mount; they are served through os.Root, never as
// raw wazero directory mounts, which follow symlinks out of the grant).
// Every call has a wall-clock timeout that closes the module when it
// expires, and a memory cap in pages that wazero applies to each linear
// memory of the instance (the guest's and the Extism kernel's), so an
// instance may hold up to twice the cap.
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
package host
