package faulttest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevocationUnderLoad: a logout, and the replay of a spent refresh
// token (which revokes the session), take effect at once for every
// check that starts after the answer, while other checks of the same token
// run concurrently (the service may answer checks from memory; a check that
// raced the revocation must not leave the session valid).
//
// It runs alone, before the parallel tests: its checks keep the CPUs busy,
// and the others measure answer times.
func TestRevocationUnderLoad(t *testing.T) {
	e := startEnv(t, envOptions{})
	ctx := context.Background()
	check := func(tok string) reply {
		return e.call(ctx, req{method: "GET", path: "/v1/session", token: tok})
	}

	// hammer checks tok from 4 goroutines until stop, and reports every
	// 200 to a check that started after revoked was set.
	hammer := func(tok string, revoked *atomic.Int64, stop <-chan struct{}, late *atomic.Int64, wg *sync.WaitGroup) {
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now().UnixNano()
					r := check(tok)
					if err := contractError(r); err != nil {
						late.Add(1 << 32) // counted apart: an answer outside the contract
						continue
					}
					if at := revoked.Load(); at != 0 && start > at && r.status == 200 {
						late.Add(1)
					}
				}
			}()
		}
	}

	const rounds = 25
	for _, how := range []string{"logout", "refresh token replay"} {
		t.Run(how, func(t *testing.T) {
			for round := 0; round < rounds; round++ {
				tk := e.login(t, appShop, appidShop, "revoker")
				cur := tk
				if how == "refresh token replay" {
					// Two rotations: the token two generations back is past the
					// grace the immediately previous one gets.
					for range 2 {
						r := e.call(ctx, req{method: "POST", path: "/v1/token",
							body: map[string]string{"grant_type": "refresh_token", "refresh_token": cur.RefreshToken}})
						if r.status != 200 || json.Unmarshal(r.body, &cur) != nil {
							t.Fatalf("refresh: %s", r)
						}
					}
				}
				if r := check(cur.AccessToken); r.status != 200 {
					t.Fatalf("check before revocation: %s", r)
				}
				var revoked, late atomic.Int64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				hammer(cur.AccessToken, &revoked, stop, &late, &wg)

				var r reply
				if how == "logout" {
					r = e.call(ctx, req{method: "POST", path: "/v1/logout", token: cur.AccessToken})
					if r.status != 204 {
						t.Fatalf("logout: %s", r)
					}
				} else {
					r = e.call(ctx, req{method: "POST", path: "/v1/token",
						body: map[string]string{"grant_type": "refresh_token", "refresh_token": tk.RefreshToken}})
					if r.status != 400 || r.code != "invalid_grant" {
						t.Fatalf("replayed refresh token: %s", r)
					}
				}
				revoked.Store(time.Now().UnixNano())
				for i := 0; i < 5; i++ {
					if r := check(cur.AccessToken); r.status != 401 {
						t.Fatalf("round %d: check %d after the %s answered: %s", round, i, how, r)
					}
				}
				close(stop)
				wg.Wait()
				if n := late.Load(); n != 0 {
					t.Fatalf("round %d: %d checks started after the %s answered still got 200, %d answers outside the contract",
						round, n&(1<<32-1), how, n>>32)
				}
				if how == "refresh token replay" {
					// The whole session is revoked: its refresh token too.
					r := e.call(ctx, req{method: "POST", path: "/v1/token",
						body: map[string]string{"grant_type": "refresh_token", "refresh_token": cur.RefreshToken}})
					if r.status != 400 || r.code != "invalid_grant" {
						t.Fatalf("round %d: current refresh token after the replay: %s", round, r)
					}
				}
			}
		})
	}
	e.checkHealthy(t)
	e.stopAll(t)
}
