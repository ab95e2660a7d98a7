package memory

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/mplogin/mplogin/store"
)

// GetAccessToken implements store.AccessTokens.
func (s *Store) GetAccessToken(ctx context.Context, key string) (store.AccessToken, error) {
	const op = "get access token"
	if err := s.lock(ctx, op); err != nil {
		return store.AccessToken{}, err
	}
	defer s.mu.Unlock()
	t, ok := s.tokens[key]
	if !ok {
		return store.AccessToken{}, notFound(op)
	}
	t.Sealed = clone(t.Sealed)
	return t, nil
}

// PutAccessToken implements store.AccessTokens.
func (s *Store) PutAccessToken(ctx context.Context, t store.AccessToken) error {
	const op = "put access token"
	if t.Key == "" || len(t.Sealed) == 0 {
		return fmt.Errorf("memory: %s: empty key or sealed value", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	t.Sealed = clone(t.Sealed)
	t.ExpiresAt = norm(t.ExpiresAt)
	t.RefreshAt = norm(t.RefreshAt)
	s.tokens[t.Key] = t
	return nil
}

// DeleteAccessToken implements store.AccessTokens.
func (s *Store) DeleteAccessToken(ctx context.Context, key string, sealed []byte) error {
	if err := s.lock(ctx, "delete access token"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	// Only the value the caller saw: a newer token stays.
	if t, ok := s.tokens[key]; ok && len(sealed) > 0 && bytes.Equal(t.Sealed, sealed) {
		delete(s.tokens, key)
	}
	return nil
}

// AcquireLease implements store.AccessTokens.
func (s *Store) AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error) {
	const op = "acquire lease"
	if key == "" || holder == "" {
		return false, fmt.Errorf("memory: %s: empty key or holder", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	if l, ok := s.leases[key]; ok && l.holder != holder && norm(now).Before(l.until) {
		return false, nil
	}
	s.leases[key] = lease{holder: holder, until: norm(until)}
	return true, nil
}

// ReleaseLease implements store.AccessTokens.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	if err := s.lock(ctx, "release lease"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if l, ok := s.leases[key]; ok && l.holder == holder {
		delete(s.leases, key)
	}
	return nil
}
