// Package deps holds the test that keeps 12fa's imports pointing one way
// (shared/DESIGN.md, "Layout"): cmd -> runtime -> {host, state, manifest,
// checkpoint, inputs, notify, progress, features, egress, command} -> abi;
// manifest may use egress and command to parse grants; state/statetest
// (the store conformance suite) uses state. Packages under internal/ are
// shared leaves.
package deps
