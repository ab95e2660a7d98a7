package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
)

// fetchUnionID asks the platform for the unionid of an identity that has
// none yet. A failure costs the login nothing: the identity records the
// unionid at a later login, and the failure is logged.
func (s *Service) fetchUnionID(ctx context.Context, app *App, openID string) string {
	id, err := s.store.GetIdentity(ctx, app.Family, app.AppID, openID)
	if err == nil && id.UnionID != "" {
		return id.UnionID
	}
	pctx, cancel := context.WithTimeout(ctx, s.policy.PlatformTimeout)
	defer cancel()
	u, err := app.UnionIDs.UnionID(pctx, openID)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "fetching the unionid failed; the login goes on without it",
			slog.String("app", app.Name), slog.Any("error", err))
		return ""
	}
	return u
}

// CheckPlatform is Check, and then asks the platform whether the identity's
// session key is still the one it holds (WeChat checksession). Info's
// SessionKeyValid carries the answer; false means user data made from now
// on will not open, and the mini program should log in again.
func (s *Service) CheckPlatform(ctx context.Context, accessToken string) (*Info, error) {
	info, err := s.Check(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	return s.checkPlatform(ctx, info)
}

// CheckPlatformAuthed is CheckPlatform for a session Authenticate returned,
// which it does not read again.
func (s *Service) CheckPlatformAuthed(ctx context.Context, a *Authed) (*Info, error) {
	if _, err := s.authed(a); err != nil {
		return nil, err
	}
	info := a.Info()
	return s.checkPlatform(ctx, &info)
}

func (s *Service) checkPlatform(ctx context.Context, info *Info) (*Info, error) {
	app := s.apps[info.App]
	if app.SessionKeys == nil {
		return nil, notSupported("session key checks")
	}
	key, err := s.sessionKey(ctx, app, info.User.OpenID)
	if err != nil {
		return nil, err
	}
	valid := false
	if !key.IsZero() {
		pctx, cancel := context.WithTimeout(ctx, s.policy.PlatformTimeout)
		valid, err = app.SessionKeys.CheckSessionKey(pctx, info.User.OpenID, key)
		cancel()
		switch {
		case errors.Is(err, ErrNotSupported):
			return nil, notSupported("session key checks")
		case err != nil:
			s.log.LogAttrs(ctx, slog.LevelInfo, "platform session check failed", slog.String("app", app.Name), slog.Any("error", err))
			return nil, platformError(err)
		}
	}
	info.SessionKeyValid = &valid
	return info, nil
}

// ResetSessionKey makes the platform issue a new session key for the
// identity (appName, openID) and keeps it, the old one staying usable for
// the grace period (WeChat resetusersessionkey). It is an operator's call:
// after a suspected leak of a session key, it makes the leaked key useless.
// A leaked key means a compromised login, so it then ends every session of
// that identity (the user's sessions through that app and openid; other
// identities of the user keep theirs) and returns how many it ended.
// Nothing about either key is returned.
func (s *Service) ResetSessionKey(ctx context.Context, appName, openID string) (int, error) {
	app, ok := s.apps[appName]
	if !ok {
		return 0, mplogin.Errorf(mplogin.CodeUnknownApp, "app names no configured app")
	}
	if app.SessionKeys == nil {
		return 0, notSupported("session key resets")
	}
	key, err := s.sessionKey(ctx, app, openID)
	if err != nil {
		return 0, err
	}
	if key.IsZero() {
		return 0, mplogin.Errorf(mplogin.CodeInvalidRequest, "the identity has no session key to reset")
	}
	pctx, cancel := context.WithTimeout(ctx, s.policy.PlatformTimeout)
	fresh, err := app.SessionKeys.ResetSessionKey(pctx, openID, key)
	cancel()
	switch {
	case errors.Is(err, ErrNotSupported):
		return 0, notSupported("session key resets")
	case errors.Is(err, ErrSessionKeyRejected):
		return 0, mplogin.Wrap(mplogin.CodeInvalidRequest,
			"the platform no longer accepts this user's session key; the user's next login replaces it", err)
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelWarn, "platform session key reset failed", slog.String("app", app.Name), slog.Any("error", err))
		return 0, platformError(err)
	}
	sealed, err := s.keys.Seal([]byte(fresh.Reveal()), KeyAAD(app.Family, app.AppID, openID))
	if err != nil {
		return 0, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	id, _, err := s.store.UpsertIdentity(ctx, store.IdentityUpsert{
		Family: app.Family, AppID: app.AppID, OpenID: openID,
		SealedSessionKey: sealed, Now: s.now(), KeyGrace: s.keyGrace(),
	})
	if err != nil {
		// The platform has a new key we failed to keep: the user's next
		// login brings it again.
		return 0, storeError("upsert identity", err)
	}
	n, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: id.UserID,
		Family: app.Family, AppID: app.AppID, OpenID: openID, Now: s.now()})
	if err != nil {
		// The key is reset; running the command again ends the sessions.
		return 0, storeError("revoke user sessions", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "session key reset", slog.String("app", app.Name),
		slog.String("user", id.UserID), slog.Int("sessions", n))
	return n, nil
}

// sessionKey opens the identity's current session key; zero when it has
// none. An unknown identity is invalid_request.
func (s *Service) sessionKey(ctx context.Context, app *App, openID string) (secret.String, error) {
	id, err := s.store.GetIdentity(ctx, app.Family, app.AppID, openID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return secret.String{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "no such user of this app")
	case err != nil:
		return secret.String{}, storeError("get identity", err)
	case len(id.SessionKey) == 0:
		return secret.String{}, nil
	}
	raw, err := s.keys.Open(id.SessionKey, KeyAAD(app.Family, app.AppID, openID))
	if err != nil {
		return secret.String{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", fmt.Errorf("open sealed session key: %w", err))
	}
	defer clear(raw)
	return secret.New(string(raw)), nil
}
