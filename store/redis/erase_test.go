package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/store/redis"
	"github.com/mplogin/mplogin/store/storetest"
)

// TestEraseLeavesNoTrace erases a user of a split store and then reads
// every key under the test's prefix, and what each holds: none may name
// the user's openids, unionid or user ID.
func TestEraseLeavesNoTrace(t *testing.T) {
	rs, prefix := openTest(t, redis.Options{})
	s := store.Split(memory.New(), rs)
	f := storetest.WriteEraseFixture(t, s)
	if err := s.EraseUser(t.Context(), f.UserID, time.Now()); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	ctx := context.Background()
	c := rawClient(t, testURL(t))
	needles := append([]string{f.UnionID, f.UserID}, f.OpenIDs...)
	var kept bool
	for _, k := range scanKeys(t, c, prefix) {
		var vals []string
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			vals = []string{c.Get(ctx, k).Val()}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = c.SMembers(ctx, k).Val()
		case "zset":
			vals = c.ZRange(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("key %s has type %s", k, typ)
		}
		for _, v := range append(vals, k) {
			for _, n := range needles {
				if strings.Contains(v, n) {
					t.Errorf("key %s holds %q", k, n)
				}
			}
			kept = kept || strings.Contains(v, f.Kept)
		}
	}
	if !kept {
		t.Error("the other user's session is gone too")
	}
}
