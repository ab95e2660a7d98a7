package accesstoken

import (
	"context"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Source is one key of a Manager as a platform.TokenSource, for clients
// that take one: the same caching, sharing and single flight.
type Source struct {
	m   *Manager
	key string
}

var (
	_ platform.TokenSource      = (*Source)(nil)
	_ platform.TokenInvalidator = (*Source)(nil)
)

// Source returns key as a platform.TokenSource. The key need not be
// registered yet; until it is, Token fails with ErrUnknownKey.
func (m *Manager) Source(key string) *Source { return &Source{m: m, key: key} }

// Token implements platform.TokenSource.
func (s *Source) Token(ctx context.Context) (secret.String, error) { return s.m.Token(ctx, s.key) }

// InvalidateToken implements platform.TokenInvalidator. A store failure is
// logged by the Manager; the token is dropped from memory regardless.
func (s *Source) InvalidateToken(ctx context.Context, tok secret.String) {
	_ = s.m.Invalidate(ctx, s.key, tok)
}

// Do is Manager.Do for this key.
func (s *Source) Do(ctx context.Context, call func(ctx context.Context, tok secret.String) error) error {
	return s.m.Do(ctx, s.key, call)
}

// Doer runs a call with a platform access token, refetching the token and
// retrying once when the platform rejects it. *Source is one; FromSource
// makes one of any platform.TokenSource.
type Doer interface {
	Do(ctx context.Context, call func(ctx context.Context, tok secret.String) error) error
}

// FromSource makes a Doer of a token source that is not a Manager's: a
// third-party platform's authorizer token, static or from the owner's token
// service (platform.URLTokenSource). When the platform rejects the token and
// ts is a platform.TokenInvalidator, the token is reported, fetched again
// and the call retried once; a static token cannot be refetched, so its
// rejection is final.
func FromSource(ts platform.TokenSource) Doer { return sourceDoer{ts} }

type sourceDoer struct{ ts platform.TokenSource }

func (d sourceDoer) Do(ctx context.Context, call func(ctx context.Context, tok secret.String) error) error {
	tok, err := d.ts.Token(ctx)
	if err != nil {
		return err
	}
	err = call(ctx, tok)
	inv, ok := d.ts.(platform.TokenInvalidator)
	if !ok || platform.KindOf(err) != platform.KindTokenInvalid {
		return err
	}
	inv.InvalidateToken(ctx, tok)
	if tok, err = d.ts.Token(ctx); err != nil {
		return err
	}
	return call(ctx, tok)
}
