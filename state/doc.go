// Package state is 12fa's embedded file store: the .12fa/ directory of a
// project.
//
// The journal (.12fa/journal.jsonl) is the source of truth. It is an
// append-only log of run and step events, one JSON object a line; every
// Append is one write and one fsync, so a record is durable when Append
// returns. agent-state.json is a snapshot of what the journal says, written
// atomically (temp file, fsync, rename, directory fsync) when a run stops, for
// people and tools that want one document; it is never read back as truth.
//
// The names of the files follow the 12-factor-agents package that 12fa
// reimplements: agent-state.json, checkpoints/, features.json,
// progress.jsonl, human-inputs.json.
//
// state imports only abi and the standard library plus gofrs/flock. It
// knows the shape of runs and steps but not how they are executed.
//
// # Caveats
//
//   - One process at a time: Open takes an exclusive file lock and refuses
//     a second writer with the holder's pid. OpenReadOnly takes no lock and
//     tolerates a journal that is being appended to.
//   - A torn or unparsable last line (a crash in the middle of a write) is
//     dropped with a warning and cut off before the next append. A bad line
//     followed by good ones is corruption: Open fails and names the line,
//     and nothing is rewritten.
//   - Opening replays the whole journal; appending costs the same whatever
//     the journal's length.
//   - Append serializes its callers under one mutex and does one write and
//     one fsync per call. It is the place where group commit goes (one fsync
//     covering every caller waiting) when several runs share a store.
package state
