package session

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/token"
)

// Token types as introspection names them.
const (
	TypeAccessToken  = "access_token"
	TypeRefreshToken = "refresh_token"
)

// Introspection is what Introspect learns of a token. Active is false for
// anything not live (unknown, expired, revoked, spent, garbage), and then
// every other field is empty: an inactive token tells nothing.
type Introspection struct {
	Active    bool
	TokenType string // TypeAccessToken or TypeRefreshToken
	SessionID string
	App       string
	Family    platform.Family
	// User is the session's user; its UnionID is empty unless the app
	// has ExposeUnionID.
	User User
	// IssuedAt is when the token was minted (zero when the token does not
	// say: one minted before tokens carried their time); ExpiresAt when
	// its holder was told it ends.
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Introspect looks a token up, access or refresh (told apart by their
// prefixes), and says whether it is live and whose it is. It is a look,
// not a use: nothing slides, nothing is spent, nothing is logged as a
// use. The error is only for a store that does not answer; a token that
// is not live is an inactive answer.
func (s *Service) Introspect(ctx context.Context, tok string) (Introspection, error) {
	if _, ok := token.Parse(tok, token.Refresh); ok {
		return s.introspectRefresh(ctx, tok)
	}
	return s.IntrospectAccess(ctx, tok)
}

// IntrospectAccess is Introspect for an access token only: any other is
// inactive. It checks the token as Check does.
func (s *Service) IntrospectAccess(ctx context.Context, accessToken string) (Introspection, error) {
	sess, err := s.checked(ctx, accessToken)
	if err != nil {
		return inactive(err)
	}
	out := s.introspection(sess, TypeAccessToken, sess.AccessHash)
	out.ExpiresAt = sess.AccessExpiresAt.Add(-mplogin.MaxClockSkew)
	return out, nil
}

func (s *Service) introspectRefresh(ctx context.Context, refreshToken string) (Introspection, error) {
	sess, err := s.sessionOfRefresh(ctx, refreshToken, "session by refresh token")
	if err != nil {
		return inactive(err)
	}
	out := s.introspection(sess, TypeRefreshToken, sess.RefreshHash)
	end := sess.RefreshExpiresAt
	if !sess.ExpiresAt.IsZero() && sess.ExpiresAt.Before(end) {
		end = sess.ExpiresAt
	}
	out.ExpiresAt = end.Add(-mplogin.MaxClockSkew)
	return out, nil
}

// inactive turns the error of a token check into an inactive answer, or
// keeps it when the store failed.
func inactive(err error) (Introspection, error) {
	if mplogin.ErrorCode(err) == mplogin.CodeInvalidToken || mplogin.ErrorCode(err) == mplogin.CodeInvalidGrant {
		return Introspection{}, nil
	}
	return Introspection{}, err
}

func (s *Service) introspection(sess store.Session, typ string, hash []byte) Introspection {
	out := Introspection{Active: true, TokenType: typ, SessionID: sess.ID, App: sess.App, Family: sess.Family,
		User: User{ID: sess.UserID, OpenID: sess.OpenID}}
	if app := s.apps[sess.App]; app != nil && app.ExposeUnionID {
		out.User.UnionID = sess.UnionID
	}
	if t, ok := token.Minted(hash); ok {
		out.IssuedAt = t
	}
	return out
}

// sessionOfRefresh finds the live session whose current refresh token is
// refreshToken, without spending it; errInvalidGrant otherwise.
func (s *Service) sessionOfRefresh(ctx context.Context, refreshToken, op string) (store.Session, error) {
	hash, ok := token.Parse(refreshToken, token.Refresh)
	if !ok {
		return store.Session{}, errInvalidGrant
	}
	sess, err := s.store.SessionByRefresh(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errInvalidGrant
	}
	if err != nil {
		return store.Session{}, storeError(op, err)
	}
	now := s.now()
	if !sess.Active(now) || !now.Before(sess.RefreshExpiresAt) {
		return store.Session{}, errInvalidGrant
	}
	if _, ok := s.apps[sess.App]; !ok {
		return store.Session{}, errInvalidGrant
	}
	return sess, nil
}

// Revoke ends the session of a token, access or refresh, with the sessions
// born of the same login code, as Logout does. A token that is unknown,
// expired, spent, revoked or not a token at all is no error: there is
// nothing to end. The error is only for a store that does not answer.
func (s *Service) Revoke(ctx context.Context, tok string) error {
	var (
		sess store.Session
		err  error
	)
	if _, ok := token.Parse(tok, token.Refresh); ok {
		sess, err = s.sessionOfRefresh(ctx, tok, "session for revocation")
	} else {
		sess, err = s.forLogout(ctx, tok)
	}
	if err != nil {
		_, err = inactive(err)
		return err
	}
	if _, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: sess.UserID, Origin: originOf(sess), Now: s.now()}); err != nil {
		return storeError("revoke session", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "token revoked: session ended", slog.String("app", sess.App),
		slog.String("user", sess.UserID), slog.String("session", sess.ID))
	return nil
}
