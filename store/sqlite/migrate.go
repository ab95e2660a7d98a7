package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mplogin/mplogin/internal/migrate"
)

// migrationFiles holds the schema: migrations/NNNN_name.sql, applied in
// version order. A released file is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// applyMigrations applies the migrations db lacks, in order, in one IMMEDIATE
// transaction (db is the writer): two processes starting together apply
// each migration once, and a failed one leaves the schema as it was. It
// refuses a database that has a migration this binary does not know, since
// it was written by a newer version.
func applyMigrations(ctx context.Context, db *sql.DB, ms []migrate.Migration, log *slog.Logger) (err error) {
	// A migration that builds an index sorts every row, in temporary files
	// that temp_store(MEMORY) would keep in the process's memory: a
	// gigabyte for ten million sessions. db has one connection, so the
	// setting applies to the transaction below.
	if _, err := db.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		return fmt.Errorf("temp_store: %w", err)
	}
	defer func() {
		if _, rerr := db.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = MEMORY"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("temp_store: %w", rerr))
		}
	}()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit

	// applied_at is for people reading the table; SQLite's clock is fine.
	_, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	) STRICT`)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied []int
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied = append(applied, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	rows.Close()

	todo, err := migrate.Pending(ms, applied)
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name)
		if err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	for _, m := range todo {
		log.InfoContext(ctx, "sqlite: applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}
