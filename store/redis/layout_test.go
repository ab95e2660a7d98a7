package redis_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/redis"
)

// serviceShaped is session i as the service makes them: IDs of 32 hex
// digits, token hashes of 38 bytes (mint time and SHA-256), an open ID of
// 28 characters.
func serviceShaped(i int, now time.Time) store.Session {
	hash := func(kind string) []byte {
		return append([]byte{1, 0x9b, 0x2c, 0x3d, byte(i >> 8), byte(i)}, sha(fmt.Sprint(kind, i))...)
	}
	return store.Session{
		ID: hex.EncodeToString(sha(fmt.Sprint("id", i))[:16]), UserID: hex.EncodeToString(sha(fmt.Sprint("user", i))[:16]),
		App: "bench-wechat", Family: "wechat", AppID: "wxbench000000001", OpenID: fmt.Sprintf("oZgfqrWnTt3IsoWIYvBpCK%06d", i),
		AccessHash: hash("access"), AccessExpiresAt: now.Add(2 * time.Hour),
		RefreshHash: hash("refresh"), RefreshExpiresAt: now.Add(30 * day),
		CreatedAt: now, LastUsedAt: now,
	}
}

// serviceRotation is a rotation of sess as the service makes them, with a
// successor of 140 bytes for the reuse grace.
func serviceRotation(sess store.Session, now time.Time) store.Rotation {
	h := func(kind string) []byte { return append([]byte{1, 0x9b, 0x2c, 0x3d, 0, 1}, sha(kind+sess.ID)...) }
	return store.Rotation{
		OldRefreshHash: sess.RefreshHash, NewAccessHash: h("access"), AccessExpiresAt: now.Add(2 * time.Hour),
		NewRefreshHash: h("refresh"), RefreshExpiresAt: now.Add(30 * day), Now: now,
		Successor: []byte(strings.Repeat("s", 140)), SuccessorUntil: now.Add(30 * time.Second),
	}
}

// memoryPerSession is the MEMORY USAGE of every key under prefix (all of
// each key's elements counted), divided by n.
func memoryPerSession(t *testing.T, c *goredis.Client, prefix string, n int) int64 {
	t.Helper()
	var sum int64
	for _, k := range scanKeys(t, c, prefix) {
		m, err := c.MemoryUsage(t.Context(), k, 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		sum += m
	}
	return sum / int64(n)
}

// TestCompactLayout: sessions are stored compactly (a listpack hash with
// the hashes as bytes, no family set, the user's index a listpack hash),
// and their keys take well under half the memory of the layout before,
// fresh and once refreshed within the reuse grace; the same sessions in
// that layout, measured alike, exceed the bounds.
func TestCompactLayout(t *testing.T) {
	s, p := openTest(t, redis.Options{})
	_, lp := openTest(t, redis.Options{})
	c := rawClient(t, testURL(t))
	legacy := legacyWriter{c: c, prefix: lp}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const n = 200
	// MEMORY USAGE per session (the keys only: Redis's own index of keys
	// adds about 50 bytes per key), measured on Redis 7.0 under the tests'
	// long prefix as about 1,180 and 2,020 bytes; the layout before takes
	// about 3,150 and 4,000.
	const freshBound, refreshedBound = 1400, 2400

	for i := range n {
		if err := s.CreateSession(ctx, serviceShaped(i, now)); err != nil {
			t.Fatal(err)
		}
		legacy.create(t, serviceShaped(i, now))
	}
	first := serviceShaped(0, now)
	wantCompact(t, c, p, first.ID, false, first.RefreshHash)
	uk := p + "u:" + first.UserID
	if typ, enc := c.Type(ctx, uk).Val(), c.ObjectEncoding(ctx, uk).Val(); typ != "hash" || enc != "listpack" {
		t.Errorf("the user's index is a %s encoded as %s", typ, enc)
	}
	v := c.Get(ctx, p+"a:"+hex.EncodeToString(first.AccessHash)).Val()
	if !strings.HasPrefix(v, "*") || !strings.Contains(v, string(first.AccessHash)) ||
		strings.Contains(v, hex.EncodeToString(first.AccessHash)) {
		t.Errorf("the access key holds %q", v)
	}
	for _, k := range scanKeys(t, c, p) {
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, p), ":")
		if !strings.Contains(" a s r u dl ", " "+kind+" ") {
			t.Errorf("key %s written", k)
		}
	}
	fresh, legacyFresh := memoryPerSession(t, c, p, n), memoryPerSession(t, c, lp, n)

	for i := range n {
		sess := serviceShaped(i, now)
		if _, err := s.RotateRefresh(ctx, serviceRotation(sess, now)); err != nil {
			t.Fatal(err)
		}
		legacy.rotate(t, serviceRotation(sess, now))
	}
	r := serviceRotation(first, now)
	wantCompact(t, c, p, first.ID, true, first.RefreshHash, r.NewRefreshHash)
	if c.Exists(ctx, p+"g:"+first.ID).Val() != 1 {
		t.Error("no g: key for the reuse grace")
	}
	refreshed, legacyRefreshed := memoryPerSession(t, c, p, n), memoryPerSession(t, c, lp, n)

	t.Logf("MEMORY USAGE per session: %d B, %d B once refreshed; the layout before: %d B, %d B",
		fresh, refreshed, legacyFresh, legacyRefreshed)
	if fresh > freshBound || refreshed > refreshedBound {
		t.Errorf("%d B per session, %d B once refreshed; want at most %d and %d", fresh, refreshed, freshBound, refreshedBound)
	}
	if legacyFresh <= freshBound || legacyRefreshed <= refreshedBound {
		t.Errorf("the layout before takes %d B and %d B: the bounds tell nothing", legacyFresh, legacyRefreshed)
	}
}
