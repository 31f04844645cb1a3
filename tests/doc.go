// Package tests holds end-to-end tests of the built 12fa binary: CLI
// scripts (testscript, testdata/*.txtar) and crash tests that SIGKILL real
// processes. They build the binary themselves and carry the integration
// build tag: make test-integration.
package tests
