// Package layout names every file and directory 12fa keeps in a project's
// store (.12fa/), in one place. The names that come from the
// 12-factor-agents package 12fa reimplements (agent-state.json,
// checkpoints/, features.json, progress.jsonl, human-inputs.json) keep its
// spelling.
//
// layout imports nothing.
package layout

// The store directory, relative to the project root.
const StoreDir = ".12fa"

// Files and directories inside StoreDir.
const (
	// JournalFile is the journal of the runs that are not finished.
	JournalFile = "journal.jsonl"
	// JournalCompacting is the next journal while a compaction writes it;
	// it replaces JournalFile by a rename.
	JournalCompacting = "journal.jsonl.compacting"
	// SnapshotFile is the snapshot of the current state.
	SnapshotFile = "agent-state.json"
	// LockFile is the writer's lock; OwnerFile says who holds it.
	LockFile  = "lock"
	OwnerFile = "lock.owner"
	// RunsDir holds a file per finished run (<id>.json) and IndexFile.
	RunsDir = "runs"
	// IndexFile, inside RunsDir, lists the finished runs, one line each.
	IndexFile = "index.jsonl"
	// PruneFile records a prune under way, so that a crash in its middle
	// is finished by the next writer.
	PruneFile = "prune.json"
	// BlobsDir holds the large bodies of recorded host calls by sha256.
	BlobsDir = "blobs"
	// CheckpointsDir holds the checkpoint records (<run>.<step>.json).
	CheckpointsDir = "checkpoints"
	// StatCache, inside CheckpointsDir, caches file stats between
	// checkpoints of the working tree.
	StatCache = "statcache.json"
	// ProgressFile is the progress log (progress.RotatedSuffix ends the
	// name of its previous part).
	ProgressFile = "progress.jsonl"
	// FeaturesFile is the feature list; FeaturesLock serializes its
	// writers.
	FeaturesFile = "features.json"
	FeaturesLock = "features.lock"
	// InputsFile holds the questions steps asked and their answers;
	// InputsLock serializes its writers.
	InputsFile = "human-inputs.json"
	InputsLock = "human-inputs.lock"
	// BundlesDir holds, on a worker, the manifests and plugins of
	// submitted runs, one directory per bundle's sha256.
	BundlesDir = "bundles"
)
