package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/secret"
)

// URLTokenSource gets a token that someone else manages from their own
// token service: GET URL answers {"access_token":"…","expires_in":seconds}.
// It keeps the token until 80% of its lifetime has passed, collapses
// concurrent fetches into one, and drops the token when a platform rejects
// it (InvalidateToken) so the next call fetches again.
type URLTokenSource struct {
	URL  string
	HTTP *http.Client     // nil = NewHTTPClient defaults
	Now  func() time.Time // nil = time.Now

	mu     sync.Mutex
	tok    secret.String
	renew  time.Time
	flight singleflight.Group
}

// Token implements TokenSource.
func (s *URLTokenSource) Token(ctx context.Context) (secret.String, error) {
	now := s.now()
	s.mu.Lock()
	tok, renew := s.tok, s.renew
	s.mu.Unlock()
	if !tok.IsZero() && now.Before(renew) {
		return tok, nil
	}
	// Detached, so that one impatient caller cannot fail the fetch for all.
	ch := s.flight.DoChan("", func() (any, error) {
		// A fetch that ended between the check above and this flight has
		// left its token: take it instead of fetching again.
		s.mu.Lock()
		tok, renew := s.tok, s.renew
		s.mu.Unlock()
		if !tok.IsZero() && s.now().Before(renew) {
			return tok, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return s.fetch(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return secret.String{}, r.Err
		}
		return r.Val.(secret.String), nil
	case <-ctx.Done():
		return secret.String{}, ctx.Err()
	}
}

// InvalidateToken implements TokenInvalidator: tok is dropped only if it is
// still the current one, so a late report cannot drop a fresh token.
func (s *URLTokenSource) InvalidateToken(_ context.Context, tok secret.String) {
	s.mu.Lock()
	if s.tok.Equal(tok) {
		s.tok, s.renew = secret.String{}, time.Time{}
	}
	s.mu.Unlock()
}

func (s *URLTokenSource) fetch(ctx context.Context) (secret.String, error) {
	hc := s.HTTP
	if hc == nil {
		hc = NewHTTPClient(HTTPConfig{})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return secret.String{}, errors.New("token service: bad URL")
	}
	status, raw, err := wire.Do(ctx, hc, req, 64<<10)
	if err != nil {
		return secret.String{}, fmt.Errorf("token service: %w",
			&Error{Host: "token-service", Endpoint: req.URL.Path, Kind: KindUnavailable, Status: status, Err: err})
	}
	if status/100 != 2 {
		return secret.String{}, fmt.Errorf("token service: HTTP status %d", status)
	}
	var body struct {
		AccessToken string   `json:"access_token"`
		ExpiresIn   wire.Int `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return secret.String{}, errors.New("token service: answer is not JSON")
	}
	// The lifetime is capped, so that a huge expires_in cannot overflow.
	life, ok := wire.TokenLifetime(body.ExpiresIn)
	if body.AccessToken == "" || !ok {
		return secret.String{}, errors.New("token service: answer lacks access_token or a positive expires_in")
	}
	tok := secret.New(body.AccessToken)
	s.mu.Lock()
	s.tok, s.renew = tok, s.now().Add(life*8/10)
	s.mu.Unlock()
	return tok, nil
}

func (s *URLTokenSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
