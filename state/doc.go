// Package state holds runs as the fold of their records: the Record and
// Run types, the fold that turns one into the other (fold.go, shared by
// every store), the Store interface the engine uses, and FileStore, the
// embedded store in a project's .12fa/ directory. state/statetest is the
// conformance suite a Store must pass.
//
// # The file store
//
// Its cost follows what is unfinished, not the history:
//
//   - journal.jsonl holds the runs that are not finished: an append-only
//     log of run, step and host-call records, one JSON object a line.
//     Append returns once its records are written and fsync'd (concurrent
//     callers share the fsync: group commit); AppendLazy once they are
//     written. It is the source of truth for those runs, and Open replays
//     it.
//   - A run that finishes (completed, failed, rolled back, rollback
//     failed) is written by a goroutine of its own, off any step's path,
//     to runs/<id>.json and a line of runs/index.jsonl, both durably.
//   - Past Config.CompactBytes (and at Close) the journal is compacted: a
//     new one is written beside it holding, after a journal_base record,
//     the state of every run it still needs (run_state and step_state
//     records), fsync'd, and renamed over the old one. Runs filed since
//     are left out. The rename is the commit point; a crash before it
//     leaves the old journal whole.
//   - List reads the unfinished runs from memory and the index from its
//     end, so a page of recent runs costs the same however long the
//     history; Run reads an unfinished run from memory and a finished one
//     from its file. A finished run taken up again (resume --retry-failed,
//     rollback, restore) comes back into the journal with its state.
//   - agent-state.json is a snapshot of the unfinished runs and the most
//     recently finished ones, written atomically at run boundaries, for
//     people and tools that want one document; it is never read back.
//   - Prune removes finished runs, their files and index lines, with what
//     other parts keep of them, and the blobs no remaining run refers to;
//     it writes what it will remove to prune.json first, so that a crash
//     in its middle is finished by the next writer.
//   - blobs/ holds the large bodies of recorded host calls, each named by
//     its sha256 (PutBlob, Blob).
//
// Every name in .12fa/ is in internal/layout; those of the 12-factor-agents
// package 12fa reimplements (agent-state.json, checkpoints/, features.json,
// progress.jsonl, human-inputs.json) keep its spelling.
//
// state imports abi, 12fa's internal helpers (atomicfile, jsonenc,
// layout) and the standard library plus gofrs/flock and go-hclog. It knows the shape of runs and steps but not how they are
// executed.
//
// # Caveats
//
//   - One writing process at a time: Open takes an exclusive file lock and
//     refuses a second writer with the holder's pid. Config.ReadOnly takes
//     no lock and tolerates a journal that is being appended to or
//     replaced.
//   - A torn or unparsable last line (a crash in the middle of a write) is
//     dropped with a warning and cut off before the next append. A bad line
//     followed by good ones is corruption: Open fails and names the line,
//     and nothing is rewritten.
//   - Opening replays the journal, which holds the unfinished runs whole:
//     a store with many large unfinished runs opens in proportion to them.
//   - The index is read backwards; a filter that matches few finished runs
//     (--status failed on a long history of completed runs) reads all of
//     it.
package state
