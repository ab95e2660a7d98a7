package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/breaker"
	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// guard runs every outbound platform call through the breaker of its
// endpoint and records it in the metrics: one place, so that no call
// escapes either.
type guard struct {
	breakers *breaker.Set
	metrics  *metrics.Metrics
}

func newGuard(m *metrics.Metrics, log *slog.Logger) *guard {
	return &guard{metrics: m, breakers: breaker.NewSet(breaker.Settings{
		OnStateChange: func(name string, from, to breaker.State) {
			m.BreakerState(name, int(to))
			log.Warn("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	})}
}

// do runs call through the breaker called flavor+":"+endpoint.
func (g *guard) do(ctx context.Context, flavor platform.Flavor, endpoint string, call func(ctx context.Context) error) error {
	start := time.Now()
	err := g.breakers.Do(ctx, string(flavor)+":"+endpoint, call)
	g.metrics.PlatformCall(string(flavor), endpoint, result(err), time.Since(start))
	return err
}

// result is the metrics label of a call's outcome.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, breaker.ErrOpen):
		return "breaker_open"
	}
	return platform.KindOf(err).String()
}

// client puts a login client behind the guard.
func (g *guard) client(c platform.Client, flavor platform.Flavor) platform.Client {
	return guardedClient{Client: c, g: g, flavor: flavor}
}

type guardedClient struct {
	platform.Client
	g      *guard
	flavor platform.Flavor
}

func (c guardedClient) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	var login *platform.Login
	err := c.g.do(ctx, c.flavor, "login", func(ctx context.Context) (err error) {
		login, err = c.Client.Exchange(ctx, req)
		return err
	})
	return login, err
}

// fetcherFor puts an access-token fetcher behind the guard; g nil leaves it
// bare.
func (g *guard) fetcherFor(f accesstoken.Fetcher, flavor platform.Flavor) accesstoken.Fetcher {
	if g == nil {
		return f
	}
	return accesstoken.FetcherFunc(func(ctx context.Context) (tok secret.String, life time.Duration, err error) {
		err = g.do(ctx, flavor, "token", func(ctx context.Context) (err error) {
			tok, life, err = f.FetchAccessToken(ctx)
			return err
		})
		g.metrics.TokenRefresh(string(flavor), result(err))
		return tok, life, err
	})
}

// withToken runs call with the token from tokens, through the guard of
// (flavor, endpoint); g nil runs it bare.
func (g *guard) withToken(ctx context.Context, tokens accesstoken.Doer, flavor platform.Flavor, endpoint string,
	call func(ctx context.Context, tok secret.String) error) error {
	if g == nil {
		return tokens.Do(ctx, call)
	}
	return tokens.Do(ctx, func(ctx context.Context, tok secret.String) error {
		return g.do(ctx, flavor, endpoint, func(ctx context.Context) error { return call(ctx, tok) })
	})
}
