package state

import (
	"context"
	"errors"
	"fmt"
)

// Store is what the engine needs of a store of runs. FileStore is the
// embedded one; statetest holds the conformance suite every Store must
// pass.
//
// A Store holds runs as the fold of their records (see Record and the
// event types): Append makes records durable, in order, and folds them;
// Run and List read the folded runs. A run is executed by one caller at a
// time: Claim makes the caller its executor until Release.
type Store interface {
	// Append makes recs durable before it returns and folds them into
	// their runs; it fills in Seq and, when zero, Time. Concurrent
	// callers share the cost of durability. A batch the fold refuses (a
	// record of an unknown run or step, a run started twice) or one with a
	// record over MaxRecordBytes is refused whole, and nothing of it is
	// written.
	Append(ctx context.Context, recs ...*Record) error
	// AppendLazy is Append without waiting for durability: a crash may
	// lose the records (never reorder them), and the next Append makes
	// them durable.
	AppendLazy(ctx context.Context, recs ...*Record) error
	// Run returns a run; ErrUnknownRun when there is none.
	Run(id string) (Run, error)
	// List returns sums of the runs o selects, the most recently active
	// first.
	List(o ListOptions) ([]RunInfo, error)
	// Claim makes the caller the executor of run id until Release;
	// ErrClaimed while another has it.
	Claim(id string) error
	// Release ends a claim.
	Release(id string)
	// Claimed counts the runs claimed now.
	Claimed() int
	// PutBlob stores b durably and returns its sha256 (hex); Blob returns
	// it, checked against its name.
	PutBlob(b []byte) (string, error)
	Blob(sha string) ([]byte, error)
	// Prune removes finished runs (see PruneOptions), calling also with
	// the ids of those it removes so that the caller removes what it keeps
	// of them.
	Prune(o PruneOptions, also func(runs []string) error) ([]RunInfo, error)
	// WriteSnapshot marks a run boundary: a store that keeps a snapshot
	// document (FileStore's agent-state.json) writes it.
	WriteSnapshot() error
	// Stats counts the store's I/O.
	Stats() Stats
	// Close makes what is pending durable and releases the store.
	Close() error
}

var _ Store = (*FileStore)(nil)

// ErrClaimed is returned by Claim for a run that another caller executes.
var ErrClaimed = errors.New("run is being executed")

// Claim makes the caller the executor of run id in this process; the
// store's lock keeps other processes out.
func (s *FileStore) Claim(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims == nil {
		s.claims = map[string]bool{}
	}
	if s.claims[id] {
		return fmt.Errorf("run %s: %w", id, ErrClaimed)
	}
	s.claims[id] = true
	return nil
}

// Release ends the claim on run id.
func (s *FileStore) Release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, id)
}

// Claimed counts the runs claimed now.
func (s *FileStore) Claimed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.claims)
}
