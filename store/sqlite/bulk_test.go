package sqlite_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/store/storetest"
)

func TestBulkInsert(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, filepath.Join(t.TempDir(), "bulk.db"), sqlite.Options{CacheSessions: 10})
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	batch := func(from, to int) ([]store.Identity, []store.Session) { return storetest.BulkBatch(from, to, now) }
	ids, sessions := batch(0, 100)
	if err := s.BulkInsert(ctx, ids, sessions); err != nil {
		t.Fatal(err)
	}
	id, err := s.GetIdentity(ctx, "wechat", "wxbulk", "o42")
	if err != nil || id.UserID != "u42" || !id.CreatedAt.Equal(now) {
		t.Fatalf("GetIdentity = %+v, %v", id, err)
	}
	if u, err := s.GetUser(ctx, "u42"); err != nil || !u.CreatedAt.Equal(now) {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	sess, err := s.SessionByAccess(ctx, []byte("a99"))
	if err != nil || sess.ID != "s99" || sess.UserID != "u99" || !sess.Active(now) {
		t.Fatalf("SessionByAccess = %+v, %v", sess, err)
	}
	// A login of a loaded identity finds it.
	got, created, err := s.UpsertIdentity(ctx, store.IdentityUpsert{Family: "wechat", AppID: "wxbulk", OpenID: "o7",
		NewUserID: "other", Now: now})
	if err != nil || created || got.UserID != "u7" {
		t.Fatalf("UpsertIdentity = %+v, %v, %v", got, created, err)
	}

	// A batch with one row that exists writes nothing.
	ids, sessions = batch(99, 200)
	if err := s.BulkInsert(ctx, ids, sessions); err == nil {
		t.Fatal("a batch overlapping the first was inserted")
	}
	if _, err := s.GetIdentity(ctx, "wechat", "wxbulk", "o150"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a row of the failed batch: %v", err)
	}
	if err := s.BulkInsert(ctx, []store.Identity{{Family: "wechat", AppID: "wxbulk", OpenID: "o1000"}}, nil); err == nil {
		t.Fatal("an identity without a user ID was inserted")
	}
}
