package redis_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/redis"
	"github.com/mplogin/mplogin/store/storetest"
)

func TestBulkCreateSessions(t *testing.T) {
	ctx := t.Context()
	s, _ := openTest(t, redis.Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	batch := func(from, to int) []store.Session {
		_, sessions := storetest.BulkBatch(from, to, now)
		return sessions
	}
	// More than one pipeline's worth.
	const n = 2500
	if err := s.BulkCreateSessions(ctx, batch(0, n)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 999, 1000, n - 1} {
		sess, err := s.SessionByAccess(ctx, fmt.Appendf(nil, "a%d", i))
		if err != nil || sess.ID != fmt.Sprint("s", i) || sess.UserID != fmt.Sprint("u", i) || !sess.Active(now) {
			t.Fatalf("SessionByAccess(a%d) = %+v, %v", i, sess, err)
		}
		if sess, err := s.SessionByRefresh(ctx, fmt.Appendf(nil, "r%d", i)); err != nil || sess.ID != fmt.Sprint("s", i) {
			t.Fatalf("SessionByRefresh(r%d) = %+v, %v", i, sess, err)
		}
	}
	if got, err := s.ListUserSessions(ctx, "u7", now); err != nil || len(got) != 1 {
		t.Fatalf("ListUserSessions = %v, %v", got, err)
	}
	err := s.BulkCreateSessions(ctx, batch(n-1, n+1))
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a session that exists: %v", err)
	}
	if err := s.BulkCreateSessions(ctx, []store.Session{{ID: "x"}}); err == nil {
		t.Fatal("a session without hashes was created")
	}
}
