package state

import (
	"errors"
	"fmt"
)

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

// ErrRecordTooLarge is returned by Append for a record whose encoding is
// longer than MaxRecordBytes. Nothing of the batch was written; the error
// (a *RecordTooLargeError) names the record.
var ErrRecordTooLarge = errors.New("journal record too large")

// RecordTooLargeError is the error of a refused record.
type RecordTooLargeError struct {
	Type      EventType
	Run, Step string
	// Bytes is the size of the record as it would have been written.
	Bytes int
}

func (e *RecordTooLargeError) Error() string {
	what := fmt.Sprintf("%s record of run %s", e.Type, e.Run)
	if e.Step != "" {
		what += fmt.Sprintf(" step %q", e.Step)
	}
	return fmt.Sprintf("%s: %s is %d bytes, the limit is %d", ErrRecordTooLarge, what, e.Bytes, MaxRecordBytes)
}

// Unwrap returns ErrRecordTooLarge.
func (e *RecordTooLargeError) Unwrap() error { return ErrRecordTooLarge }

func recordTooLarge(rec *Record, n int) error {
	return &RecordTooLargeError{Type: rec.Type, Run: rec.Run, Step: rec.Step, Bytes: n}
}
