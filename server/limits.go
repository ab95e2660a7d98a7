package server

import (
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/ratelimit"
)

// limiterFor makes a limiter of a configured limit: in Redis when the
// sessions live there (every instance shares the buckets), else in memory.
func limiterFor(now func() time.Time, shared goredis.Scripter) func(config.Limit) ratelimit.Limiter {
	return func(l config.Limit) ratelimit.Limiter {
		if l.Rate <= 0 {
			return nil
		}
		r := ratelimit.Rate{PerSecond: l.Rate, Burst: l.Burst}
		if shared != nil {
			return ratelimit.NewRedis(shared, r, ratelimit.RedisOptions{Now: now})
		}
		return ratelimit.NewMemory(r, ratelimit.MemoryOptions{Now: now})
	}
}

// limits builds the API's limiters from the configuration.
func limits(c config.Limits, mk func(config.Limit) ratelimit.Limiter) httpapi.Limits {
	if !c.Enabled {
		return httpapi.Limits{}
	}
	route := func(r config.RouteLimit) httpapi.RouteLimits {
		return httpapi.RouteLimits{IP: mk(r.IP), Session: mk(r.Session), App: mk(r.App)}
	}
	return httpapi.Limits{Login: route(c.Login), Refresh: route(c.Refresh), Verify: route(c.Verify),
		Decrypt: route(c.Decrypt), Phone: route(c.Phone)}
}
