package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mplogin/mplogin/store"
)

// bulkCacheKiB is the writer's page cache after a BulkInsert.
const bulkCacheKiB = 512 << 10

// BulkInsert is for filling a database to measure at scale (the load
// harness's -populate), not for the service: it inserts each identity with
// a new user (ID UserID, created at CreatedAt), and each session, all in
// one transaction. Nothing is looked up first: an identity, user or
// session that exists already fails the whole call, and nothing is
// written. Through UpsertIdentity and CreateSession, each row would be a
// transaction of its own, or a savepoint in a shared one: several times
// slower. After it, the writer's page cache is 512 MiB.
func (s *Store) BulkInsert(ctx context.Context, ids []store.Identity, sessions []store.Session) error {
	const op = "bulk insert"
	if err := store.CheckBulk(ids, sessions); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error {
		// Identities are keyed by openid, which is random: past a million
		// rows most inserts land on a page that the default 2 MiB page
		// cache no longer holds. The writer keeps the larger cache from
		// here on, so that consecutive calls find their pages.
		if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -"+strconv.Itoa(bulkCacheKiB)); err != nil {
			return fmt.Errorf("cache size: %w", err)
		}
		user := tx.insertUser
		identity := tx.insertIdentity
		for _, id := range ids {
			if _, err := user.ExecContext(ctx, id.UserID, micros(trunc(id.CreatedAt))); err != nil {
				return fmt.Errorf("insert user: %w", err)
			}
			_, err := identity.ExecContext(ctx,
				id.Family, id.AppID, id.OpenID, nullString(id.UnionID), id.UserID,
				blob(id.SessionKey), nil, nil, micros(trunc(id.CreatedAt)), micros(trunc(id.UpdatedAt)))
			if err != nil {
				return fmt.Errorf("insert identity: %w", err)
			}
		}
		for _, sess := range sessions {
			if err := insertSession(ctx, tx, sess); err != nil {
				return err
			}
		}
		return nil
	})
}
