package postgres

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mplogin/mplogin/internal/migrate"
)

// migrationFiles holds the schema: migrations/NNNN_name.sql, applied in
// version order. A released file is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the first key of the advisory lock Open takes while
// migrating; the second is a hash of the schema's name, so that stores in
// different schemas of one database do not wait for each other.
const migrationLock = 0x6d706c67 // "mplg"

// applyMigrations applies the migrations the database lacks, in order, in
// one transaction that holds an advisory lock on the schema: instances
// starting together take turns, and each migration is applied once. The lock
// is transaction-level, so it is released by the commit or rollback, or by
// the server if the connection breaks. A failed migration leaves the schema
// as it was (DDL is transactional). It refuses a database that has a
// migration this binary does not know, since it was written by a newer
// version.
//
// schema, when not empty, is created if missing; the connection's search_path
// already names it.
func applyMigrations(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migrate.Migration, log *slog.Logger) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit

	// Migrations may legitimately take longer than a statement of the
	// service (an index on a large table); the caller's context bounds them.
	// The schema's name is the one given or, for the default search_path,
	// the schema tables are created in.
	_, err = tx.Exec(ctx, `SELECT set_config('statement_timeout', '0', true),
		pg_advisory_xact_lock($1, hashtext(coalesce(nullif($2, ''), current_schema(), '')))`,
		int32(migrationLock), schema)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if schema != "" {
		// Only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE
		// privilege on the database even when the schema exists.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
	}
	// applied_at is for people reading the table.
	_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer NOT NULL PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := make([]int, len(versions))
	for i, v := range versions {
		applied[i] = int(v)
	}
	todo, err := migrate.Pending(ms, applied)
	if err != nil {
		return err
	}
	for _, m := range todo {
		// No arguments: pgx sends it with the simple protocol, which runs
		// every statement of the file.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
		if err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	for _, m := range todo {
		log.InfoContext(ctx, "postgres: applied migration", "version", m.Version, "name", m.Name,
			"schema", schema)
	}
	return nil
}
