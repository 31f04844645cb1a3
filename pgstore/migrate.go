package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SchemaVersion is the schema this version of 12fa writes.
var SchemaVersion = func() int {
	v, _ := versions()
	return v[len(v)-1].n
}()

type migration struct {
	n    int
	name string
}

func versions() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: no version number", e.Name())
		}
		out = append(out, migration{n, e.Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out, nil
}

// Migrate brings the database's schema to SchemaVersion, each migration in
// a transaction of its own under an advisory lock (so that two processes
// migrating at once apply each once), and returns the version it found.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (from int, err error) {
	return migrate(ctx, pool, SchemaVersion)
}

// migrate brings the schema to version to.
func migrate(ctx context.Context, pool *pgxpool.Pool, to int) (from int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	const lock = 0x12fa
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&from); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	ms, err := versions()
	if err != nil {
		return from, err
	}
	if from > ms[len(ms)-1].n {
		return from, fmt.Errorf("migrate: the database's schema is version %d, newer than this 12fa's %d", from, ms[len(ms)-1].n)
	}
	for _, m := range ms {
		if m.n <= from || m.n > to {
			continue
		}
		sql, err := migrations.ReadFile("migrations/" + m.name)
		if err != nil {
			return from, err
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return from, fmt.Errorf("migrate to %d: %w", m.n, err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			_ = tx.Rollback(ctx)
			return from, fmt.Errorf("migrate to %d (%s): %w", m.n, m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.n); err != nil {
			_ = tx.Rollback(ctx)
			return from, fmt.Errorf("migrate to %d: %w", m.n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return from, fmt.Errorf("migrate to %d: %w", m.n, err)
		}
	}
	return from, nil
}
