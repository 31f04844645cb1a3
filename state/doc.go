// Package state is 12fa's embedded file store: the .12fa/ directory of a
// project.
//
// The journal (.12fa/journal.jsonl) is the source of truth. It is an
// append-only log of run, step and host-call events, one JSON object a
// line. Append returns once its records are written and fsync'd; AppendLazy
// once they are written (a power cut may lose them, a killed process does
// not). agent-state.json is a snapshot of what the journal says, written
// atomically (temp file, fsync, rename, directory fsync) when a run stops,
// for people and tools that want one document; it is never read back as
// truth. blobs/ holds the large bodies of recorded host calls, each named
// by its sha256 (PutBlob, Blob).
//
// The names of the files follow the 12-factor-agents package that 12fa
// reimplements: agent-state.json, checkpoints/, features.json,
// progress.jsonl, human-inputs.json.
//
// state imports abi and the standard library plus gofrs/flock. It knows
// the shape of runs and steps (the fold of records into a Run) but not how
// they are executed.
//
// # Caveats
//
//   - One process at a time: Open takes an exclusive file lock and refuses
//     a second writer with the holder's pid. Config.ReadOnly takes no lock
//     and tolerates a journal that is being appended to.
//   - A torn or unparsable last line (a crash in the middle of a write) is
//     dropped with a warning and cut off before the next append. A bad line
//     followed by good ones is corruption: Open fails and names the line,
//     and nothing is rewritten.
//   - Opening replays the whole journal, and the snapshot holds every run:
//     both grow with the history.
//   - Concurrent callers of Append share fsyncs (group commit): while one
//     batch is written, the next fills.
package state
