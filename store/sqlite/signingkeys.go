package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mplogin/mplogin/store"
)

// The set is read and written a few times an hour, so its statements are
// not prepared at Open.
const (
	getSigningKeysSQL = `SELECT sealed, version, updated_at FROM signing_keys WHERE id = 1`
	// Version 0 asks for the first set: the primary key lets one insert win.
	createSigningKeysSQL = `INSERT INTO signing_keys (id, sealed, version, updated_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	// Compare and swap in one statement, under SQLite's write lock.
	swapSigningKeysSQL = `UPDATE signing_keys SET sealed = ?, version = ?, updated_at = ?
		WHERE id = 1 AND version = ?`
)

// GetSigningKeys implements store.SigningKeys.
func (s *Store) GetSigningKeys(ctx context.Context) (store.SigningKeySet, error) {
	var (
		set store.SigningKeySet
		upd sql.NullInt64
	)
	err := s.read.QueryRowContext(ctx, getSigningKeysSQL).Scan(&set.Sealed, &set.Version, &upd)
	if err != nil {
		return store.SigningKeySet{}, s.fail(ctx, "get signing keys", err)
	}
	set.UpdatedAt = fromMicros(upd)
	return set, nil
}

// PutSigningKeys implements store.SigningKeys.
func (s *Store) PutSigningKeys(ctx context.Context, set store.SigningKeySet, prevVersion int64) (bool, error) {
	const op = "put signing keys"
	if len(set.Sealed) == 0 || set.Version <= 0 {
		return false, fmt.Errorf("sqlite: %s: empty sealed value or version not above 0", op)
	}
	n, err := s.affected(ctx, op, nil, func(ctx context.Context, tx wtx) (sql.Result, error) {
		if prevVersion == 0 {
			return tx.ExecContext(ctx, createSigningKeysSQL, set.Sealed, set.Version, micros(set.UpdatedAt))
		}
		return tx.ExecContext(ctx, swapSigningKeysSQL, set.Sealed, set.Version, micros(set.UpdatedAt), prevVersion)
	})
	return n == 1, err
}
