package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mplogin/mplogin/store"
)

const (
	getSigningKeysSQL = `SELECT sealed, version, updated_at FROM signing_keys WHERE id = 1`
	// Version 0 asks for the first set: of concurrent inserts the primary
	// key lets one win; the others wait for it and then do nothing.
	createSigningKeysSQL = `INSERT INTO signing_keys (id, sealed, version, updated_at) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO NOTHING`
	// Compare and swap in one statement: a concurrent update waits for the
	// row's lock and then re-checks the version on the row's latest
	// version, so only one of them matches.
	swapSigningKeysSQL = `UPDATE signing_keys SET sealed = $1, version = $2, updated_at = $3
		WHERE id = 1 AND version = $4`
)

// GetSigningKeys implements store.SigningKeys.
func (s *Store) GetSigningKeys(ctx context.Context) (store.SigningKeySet, error) {
	var set store.SigningKeySet
	err := s.run(ctx, "get signing keys", true, func() error {
		var upd pgtype.Timestamptz
		set = store.SigningKeySet{}
		err := s.pool.QueryRow(ctx, getSigningKeysSQL).Scan(&set.Sealed, &set.Version, &upd)
		set.UpdatedAt = fromTS(upd)
		return err
	})
	if err != nil {
		return store.SigningKeySet{}, err
	}
	return set, nil
}

// PutSigningKeys implements store.SigningKeys. A retry after a lost
// connection may find its own earlier write and report a lost race; the
// caller then reloads the set, which is what it wrote.
func (s *Store) PutSigningKeys(ctx context.Context, set store.SigningKeySet, prevVersion int64) (bool, error) {
	const op = "put signing keys"
	if len(set.Sealed) == 0 || set.Version <= 0 {
		return false, fmt.Errorf("postgres: %s: empty sealed value or version not above 0", op)
	}
	var won bool
	err := s.run(ctx, op, false, func() error {
		query, args := swapSigningKeysSQL, []any{set.Sealed, set.Version, ts(trunc(set.UpdatedAt)), prevVersion}
		if prevVersion == 0 {
			query, args = createSigningKeysSQL, args[:3]
		}
		tag, err := s.pool.Exec(ctx, query, args...)
		won = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, err
	}
	return won, nil
}
