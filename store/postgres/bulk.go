package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mplogin/mplogin/store"
)

// BulkInsert is for filling a database to measure at scale (the load
// harness's -populate), not for the service: it inserts each identity with
// a new user (ID UserID, created at CreatedAt), and each session with its
// refresh token, all in one transaction of COPYs. Nothing is looked up
// first: an identity, user or session that exists already fails the whole
// call, and nothing is written. UpsertIdentity and CreateSession cost a
// round trip and a commit each: about twenty times slower.
func (s *Store) BulkInsert(ctx context.Context, ids []store.Identity, sessions []store.Session) error {
	const op = "bulk insert"
	if err := store.CheckBulk(ids, sessions); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.run(ctx, op, false, func() (err error) {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				err = errors.Join(err, tx.Rollback(ctx))
			}
		}()
		copyRows := func(table string, cols []string, n int, row func(i int) []any) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
			if err != nil {
				return fmt.Errorf("copy %s: %w", table, err)
			}
			return nil
		}
		err = copyRows("users", []string{"id", "created_at"}, len(ids), func(i int) []any {
			return []any{ids[i].UserID, ts(ids[i].CreatedAt)}
		})
		if err != nil {
			return err
		}
		err = copyRows("identities", []string{"platform", "app_id", "open_id", "union_id", "user_id", "session_key", "created_at", "updated_at"},
			len(ids), func(i int) []any {
				id := ids[i]
				return []any{string(id.Family), id.AppID, id.OpenID, text(id.UnionID), id.UserID, bytesOrNil(id.SessionKey), ts(id.CreatedAt), ts(id.UpdatedAt)}
			})
		if err != nil {
			return err
		}
		err = copyRows("sessions", []string{"id", "user_id", "app", "platform", "app_id", "open_id", "access_hash",
			"access_expires_at", "refresh_hash", "refresh_expires_at", "created_at", "expires_at", "last_used_at",
			"revoked_at", "decrypt_failures", "union_id", "origin"}, len(sessions), func(i int) []any {
			sess := sessions[i]
			return []any{sess.ID, sess.UserID, sess.App, string(sess.Family), sess.AppID, sess.OpenID, sess.AccessHash,
				ts(sess.AccessExpiresAt), sess.RefreshHash, ts(sess.RefreshExpiresAt), ts(sess.CreatedAt), ts(sess.ExpiresAt),
				ts(sess.LastUsedAt), ts(sess.RevokedAt), int32(sess.DecryptFailures), sess.UnionID, text(sess.Origin)}
		})
		if err != nil {
			return err
		}
		err = copyRows("refresh_tokens", []string{"hash", "session_id", "expires_at"}, len(sessions), func(i int) []any {
			return []any{sessions[i].RefreshHash, sessions[i].ID, ts(sessions[i].RefreshExpiresAt)}
		})
		if err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// bytesOrNil stores an empty slice as NULL, as the other writes do.
func bytesOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
