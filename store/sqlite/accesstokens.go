package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mplogin/mplogin/store"
)

// GetAccessToken implements store.AccessTokens.
func (s *Store) GetAccessToken(ctx context.Context, key string) (store.AccessToken, error) {
	var (
		t        store.AccessToken
		exp, ref sql.NullInt64
	)
	err := s.r.getAccessToken.QueryRowContext(ctx, key).Scan(&t.Key, &t.Sealed, &exp, &ref)
	if err != nil {
		return store.AccessToken{}, s.fail(ctx, "get access token", err)
	}
	t.ExpiresAt, t.RefreshAt = fromMicros(exp), fromMicros(ref)
	return t, nil
}

// PutAccessToken implements store.AccessTokens.
func (s *Store) PutAccessToken(ctx context.Context, t store.AccessToken) error {
	const op = "put access token"
	if t.Key == "" || len(t.Sealed) == 0 {
		return fmt.Errorf("sqlite: %s: empty key or sealed value", op)
	}
	return s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error {
		_, err := tx.putAccessToken.ExecContext(ctx, t.Key, t.Sealed, micros(t.ExpiresAt), micros(t.RefreshAt))
		return err
	})
}

// DeleteAccessToken implements store.AccessTokens: one statement compares
// and deletes, under SQLite's write lock.
func (s *Store) DeleteAccessToken(ctx context.Context, key string, sealed []byte) error {
	return s.inPlainTx(ctx, "delete access token", func(ctx context.Context, tx wtx) error {
		_, err := tx.deleteAccessToken.ExecContext(ctx, key, blob(sealed))
		return err
	})
}

// AcquireLease implements store.AccessTokens: one upsert under SQLite's
// write lock decides.
func (s *Store) AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error) {
	const op = "acquire lease"
	if key == "" || holder == "" {
		return false, fmt.Errorf("sqlite: %s: empty key or holder", op)
	}
	var acquired bool
	err := s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error {
		var got string
		err := tx.acquireLease.QueryRowContext(ctx, key, holder, until.UnixMicro(), now.UnixMicro()).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) { // held by another
			acquired = false
			return nil
		}
		acquired = err == nil
		return err
	})
	if err != nil { // acquired is the write's until it has answered
		return false, err
	}
	return acquired, nil
}

// ReleaseLease implements store.AccessTokens.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	return s.inPlainTx(ctx, "release lease", func(ctx context.Context, tx wtx) error {
		_, err := tx.releaseLease.ExecContext(ctx, key, holder)
		return err
	})
}
