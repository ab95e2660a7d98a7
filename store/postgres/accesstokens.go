package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mplogin/mplogin/store"
)

// GetAccessToken implements store.AccessTokens.
func (s *Store) GetAccessToken(ctx context.Context, key string) (store.AccessToken, error) {
	var t store.AccessToken
	err := s.run(ctx, "get access token", true, func() error {
		var exp, ref pgtype.Timestamptz
		t = store.AccessToken{}
		err := s.pool.QueryRow(ctx, getAccessTokenSQL, key).Scan(&t.Key, &t.Sealed, &exp, &ref)
		t.ExpiresAt, t.RefreshAt = fromTS(exp), fromTS(ref)
		return err
	})
	if err != nil {
		return store.AccessToken{}, err
	}
	return t, nil
}

// PutAccessToken implements store.AccessTokens.
func (s *Store) PutAccessToken(ctx context.Context, t store.AccessToken) error {
	const op = "put access token"
	if t.Key == "" || len(t.Sealed) == 0 {
		return fmt.Errorf("postgres: %s: empty key or sealed value", op)
	}
	return s.run(ctx, op, false, func() error {
		_, err := s.pool.Exec(ctx, putAccessTokenSQL, t.Key, t.Sealed, ts(t.ExpiresAt), ts(t.RefreshAt))
		return err
	})
}

// DeleteAccessToken implements store.AccessTokens: one DELETE compares and
// deletes. An empty value is NULL, which equals nothing.
func (s *Store) DeleteAccessToken(ctx context.Context, key string, sealed []byte) error {
	return s.run(ctx, "delete access token", false, func() error {
		_, err := s.pool.Exec(ctx, deleteAccessTokenSQL, key, blob(sealed))
		return err
	})
}

// AcquireLease implements store.AccessTokens: one upsert decides.
func (s *Store) AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error) {
	const op = "acquire lease"
	if key == "" || holder == "" {
		return false, fmt.Errorf("postgres: %s: empty key or holder", op)
	}
	var got bool
	err := s.run(ctx, op, false, func() error {
		err := s.pool.QueryRow(ctx, acquireLeaseSQL, key, holder, ts(trunc(until)), ts(trunc(now))).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			got, err = false, nil // another holder's lease is live
		}
		return err
	})
	if err != nil {
		return false, err
	}
	return got, nil
}

// ReleaseLease implements store.AccessTokens.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	return s.run(ctx, "release lease", false, func() error {
		_, err := s.pool.Exec(ctx, releaseLeaseSQL, key, holder)
		return err
	})
}
