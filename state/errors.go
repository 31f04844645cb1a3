package state

import "errors"

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("store is in use by another process")

// ErrCorrupt is returned by Open when the journal holds a bad record that is
// not the last one. The error names the file and line.
var ErrCorrupt = errors.New("journal is corrupt")

// ErrNotInitialized is returned when the store directory does not exist.
var ErrNotInitialized = errors.New("store not initialized (run '12fa init')")

// ErrUnknownRun is returned for a record or query about a run the journal
// does not hold.
var ErrUnknownRun = errors.New("unknown run")
