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
