package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// BenchSessionCap measures the cap on an identity's live sessions where it
// runs apart from a login's own write (after a repeat of a login code, and
// on store.Split): RevokeUserSessions with Keep 20, from parallel
// callers, over identities (wechat, wxA, o<i>) of users u<i>, i below
// identities. The caller has stored a few live sessions of each, fewer than
// 20, so that nothing is revoked: the common case, one read and no write.
func BenchSessionCap(b *testing.B, s store.Store, identities int, now time.Time) {
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1) % int64(identities)
			revoked, err := s.RevokeUserSessions(b.Context(), store.UserRevocation{
				UserID: fmt.Sprint("u", i), Family: "wechat", AppID: "wxA", OpenID: fmt.Sprint("o", i),
				Keep: 20, Now: now,
			})
			if err != nil || revoked != 0 {
				b.Errorf("RevokeUserSessions: %d, %v; want 0 revoked", revoked, err)
				return
			}
		}
	})
}
