package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mplogin/mplogin/ratelimit"
)

// A caller checks the limit before the login, fails open on a limiter
// error, and rounds RetryAfter up to whole seconds for the header.
func Example() {
	var lim ratelimit.Limiter = ratelimit.NewMemory(ratelimit.Rate{PerSecond: 1, Burst: 5}, ratelimit.MemoryOptions{})
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	// retryAfter returns the Retry-After header's value, or "" to proceed.
	retryAfter := func(ip string) string {
		d, err := lim.Allow(ctx, "login:ip:"+ip)
		if err != nil {
			log.WarnContext(ctx, "rate limiter failed; letting the request through", "err", err)
			return ""
		}
		if d.Allowed {
			return ""
		}
		return fmt.Sprint(int64((d.RetryAfter + time.Second - 1) / time.Second))
	}
	for range 6 {
		fmt.Printf("%q ", retryAfter("192.0.2.1"))
	}
	fmt.Println()
	// Output: "" "" "" "" "" "1"
}
