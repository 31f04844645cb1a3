// Package bench measures 12fa's durable-step speed against the fsync floor
// of the disk it runs on: the numbers behind `make bench` and `12fa bench`.
//
// Every part runs on the same directory in the same process run, so the
// ratios compare like with like: the floor (append 100 bytes + fsync), W1
// (one long sequential run), W2 (many runs at once, sharing fsyncs), W3
// (kill -9 in the middle, then resume in a new process), cold start, and
// flatness (the per-step cost late in a 10,000-step run against early).
//
// bench drives the engine through runtime, and the built binary for the
// parts that need a process of their own (W3, cold start). It is a tool,
// like tests/: runtime does not know it.
package bench
