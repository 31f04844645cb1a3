// Package runtime is 12fa's engine: it runs a workflow's steps in order,
// each in a sandboxed instance (reset to a snapshot between calls, or made
// anew), journals every attempt and every host call, and resumes an
// interrupted run after its last completed step.
//
// It is the API for Go programs that embed 12fa (the 12-factor-agents
// package's WorkflowRunner): New opens a project's store and a Wasm host,
// Run runs a manifest (loaded from TOML or built in code), Resume continues a
// run by id, Rollback undoes one, Runs and RunState read what the store
// holds, Prune removes old finished runs; OpenView reads a store another
// process is running (what status, checkpoints and inputs show).
//
// Files by concept: runtime.go (the Runtime, its store and host), run.go
// (picking the run and carrying out an intent), decide.go (what may happen
// to a run in which status), load.go (plugins read and checked before
// anything runs), execution.go (the steps of one run), rollback.go,
// retry (in execution.go), hostcalls.go (journaled HTTP and commands),
// record.go (journal, then tell), checkpoints.go, restore.go, view.go.
//
// runtime composes host, state and manifest; they do not know each other.
// Only cmd/12fa and internal/bench import runtime.
//
// # Guarantees
//
//   - A step's output and its context writes are durable (fsync'd) before
//     the next step starts. A completed step never runs again in its run;
//     its output is replayed from the journal.
//   - The start of a non-idempotent step's attempt is durable before the
//     plugin is called, so a crash inside it is detected on resume and the
//     step is not run again without a person saying so (RunOptions).
//   - An idempotent step found interrupted is run again.
//   - A step's HTTP requests and commands go through the grants of its
//     manifest (egress, command) and are journaled: a step run again after
//     a question or a crash gets the recorded results while its calls
//     match; a call whose effect must not happen twice is never made again
//     by itself (http_outcome_unknown, replay_diverged).
//
// # Caveats
//
//   - One Runtime per store at a time; a second process is refused by the
//     store's lock.
//   - The envelope carries every earlier step's output (unless the step
//     declares needs), so its size grows with the run.
package runtime
