package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// AdminUser is what an operator sees of a user: never a token, a session
// key or a whole phone number.
type AdminUser struct {
	ID        string
	CreatedAt time.Time
	// LastLoginAt is the latest time one of the user's identities logged
	// in (the identity's last update); zero when there is none.
	LastLoginAt time.Time
	Identities  []AdminIdentity
	// Phone is the bound phone number, masked; nil when none is bound.
	Phone         *AdminPhone
	Blocked       bool
	BlockedReason string
	BlockedAt     time.Time // zero when not blocked
}

// AdminIdentity is one platform account of a user.
type AdminIdentity struct {
	Family    platform.Family
	AppID     string
	OpenID    string
	UnionID   string // "" when unknown
	CreatedAt time.Time
	UpdatedAt time.Time // the identity's last login
}

// AdminPhone is a bound phone number as an operator sees it.
type AdminPhone struct {
	// Masked keeps the first three and last four digits (138****0000);
	// "" when the stored number does not open (sealed under a retired
	// master key).
	Masked    string
	Source    string // store.PhoneFromPlatform or store.PhoneFromUserData
	App       string
	UpdatedAt time.Time
}

// AdminSession is one live session of a user, without its tokens.
type AdminSession struct {
	ID        string
	App       string
	CreatedAt time.Time
	// LastRefreshAt is the session's last refresh (its creation when it
	// was never refreshed).
	LastRefreshAt time.Time
	ExpiresAt     time.Time // the absolute end; zero when none
}

// UserQuery names a user by one of their identities: App and OpenID (an
// openid of a configured app), or UnionID and Family (a unionid of a
// platform family); or by their phone number: Phone, with + and its
// country code, or a mainland number without (+86 138 0000 0000,
// 13800000000).
type UserQuery struct {
	App, OpenID string
	UnionID     string
	Family      platform.Family
	Phone       string
}

// MaxBlockReason bounds the reason an operator gives for a block, in
// characters: it is a note for the next operator, not a document.
const MaxBlockReason = 500

var (
	errUserNotFound = mplogin.Errorf(mplogin.CodeNotFound, "no such user")
	errBlocked      = mplogin.Errorf(mplogin.CodeUserBlocked, "this user is blocked")
)

// adminStoreError is storeError, but an unknown user is not_found.
func adminStoreError(op string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return mplogin.Wrap(mplogin.CodeNotFound, errUserNotFound.Message, &StoreError{Op: op, Err: err})
	}
	return storeError(op, err)
}

// User describes the user id for an operator: not_found when there is none.
func (s *Service) User(ctx context.Context, id string) (AdminUser, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return AdminUser{}, adminStoreError("get user", err)
	}
	ids, err := s.store.ListIdentities(ctx, id)
	if err != nil {
		return AdminUser{}, storeError("list identities", err)
	}
	out := AdminUser{ID: u.ID, CreatedAt: u.CreatedAt, Blocked: u.Blocked, BlockedReason: u.BlockedReason,
		BlockedAt: u.BlockedAt, Identities: make([]AdminIdentity, 0, len(ids))}
	for _, i := range ids {
		out.Identities = append(out.Identities, AdminIdentity{Family: i.Family, AppID: i.AppID, OpenID: i.OpenID,
			UnionID: i.UnionID, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt})
		if i.UpdatedAt.After(out.LastLoginAt) {
			out.LastLoginAt = i.UpdatedAt
		}
	}
	if len(u.Phone.Sealed) > 0 {
		p := &AdminPhone{Source: u.Phone.Source, App: u.Phone.App, UpdatedAt: u.Phone.UpdatedAt}
		if n, err := s.openPhone(u.ID, u.Phone.Sealed); err != nil {
			// The rest of the answer is still worth having.
			s.log.LogAttrs(ctx, slog.LevelWarn, "a stored phone number does not open", slog.String("user", u.ID), slog.Any("error", err))
		} else {
			p.Masked = MaskPhone(n.PurePhoneNumber, n.PhoneNumber)
		}
		out.Phone = p
	}
	return out, nil
}

// openPhone opens a user's sealed phone number.
func (s *Service) openPhone(userID string, sealed []byte) (PhoneNumber, error) {
	plain, err := s.keys.Open(sealed, phoneAAD(userID))
	if err != nil {
		return PhoneNumber{}, fmt.Errorf("open sealed phone: %w", err)
	}
	defer clear(plain)
	var p PhoneNumber
	if err := json.Unmarshal(plain, &p); err != nil {
		return PhoneNumber{}, fmt.Errorf("stored phone: %w", err)
	}
	return p, nil
}

// MaskPhone masks a phone number for an operator's eyes: the first three
// and the last four digits of the number without its country code (pure,
// or else full), the rest as four stars; a number too short for that is
// all stars. Enough to tell two numbers apart on the telephone, not to
// call one.
func MaskPhone(pure, full string) string {
	n := pure
	if n == "" {
		n = full
	}
	if len(n) < 8 || !utf8.ValidString(n) || utf8.RuneCountInString(n) != len(n) {
		return "****"
	}
	return n[:3] + "****" + n[len(n)-4:]
}

// FindUser finds the user of an identity or a phone number (see
// UserQuery): not_found when none has it, invalid_request when q names
// neither an app and an openid, nor a unionid and a family, nor a phone
// number, or more than one of them, or an app that is not configured.
// Several users may hold one number (without Policy.LinkByPhone): the
// oldest is found.
func (s *Service) FindUser(ctx context.Context, q UserQuery) (AdminUser, error) {
	var id string
	byIdentity := q.App != "" || q.OpenID != ""
	byUnion := q.UnionID != "" || q.Family != ""
	if byIdentity && byUnion || q.Phone != "" && (byIdentity || byUnion) {
		return AdminUser{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "give one of: app and openid, unionid and platform, or phone")
	}
	switch {
	case q.Phone != "":
		key, ok := phoneQueryKey(q.Phone)
		if !ok {
			return AdminUser{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "phone must be a number: + and its country code, or a mainland number without")
		}
		us, err := s.store.FindUsersByPhone(ctx, s.keys.Lookups(phonePurpose, []byte(key)))
		if err != nil {
			return AdminUser{}, storeError("find users by phone", err)
		}
		if len(us) == 0 {
			return AdminUser{}, errUserNotFound
		}
		id = us[0].ID
	case q.App != "" && q.OpenID != "":
		app, ok := s.apps[q.App]
		if !ok {
			return AdminUser{}, mplogin.Errorf(mplogin.CodeUnknownApp, "app names no configured app")
		}
		i, err := s.store.GetIdentity(ctx, app.Family, app.AppID, q.OpenID)
		if err != nil {
			return AdminUser{}, adminStoreError("get identity", err)
		}
		id = i.UserID
	case q.UnionID != "" && q.Family != "":
		u, err := s.store.FindUserByUnionID(ctx, q.Family, q.UnionID)
		if err != nil {
			return AdminUser{}, adminStoreError("find user by unionid", err)
		}
		id = u.ID
	default:
		return AdminUser{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "give one of: app and openid, unionid and platform, or phone")
	}
	return s.User(ctx, id)
}

// UserSessions lists the user's live sessions, newest first: not_found
// when there is no such user.
func (s *Service) UserSessions(ctx context.Context, id string) ([]AdminSession, error) {
	if _, err := s.store.GetUser(ctx, id); err != nil {
		return nil, adminStoreError("get user", err)
	}
	ss, err := s.store.ListUserSessions(ctx, id, s.now())
	if err != nil {
		return nil, storeError("list user sessions", err)
	}
	out := make([]AdminSession, 0, len(ss))
	for _, x := range ss {
		out = append(out, AdminSession{ID: x.ID, App: x.App, CreatedAt: x.CreatedAt, LastRefreshAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt})
	}
	return out, nil
}

// RevokeUser ends every session of the user at once, in every app, and
// returns how many it ended: not_found when there is no such user. The
// user may log in again; BlockUser keeps them out.
func (s *Service) RevokeUser(ctx context.Context, id string) (int, error) {
	if _, err := s.store.GetUser(ctx, id); err != nil {
		return 0, adminStoreError("get user", err)
	}
	n, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: id, Now: s.now()})
	if err != nil {
		return 0, storeError("revoke user sessions", err)
	}
	return n, nil
}

// BlockUser blocks the user, for reason, and ends every session of theirs;
// from then on their logins answer user_blocked. It returns how many
// sessions it ended. The block is written first, so that a login racing
// with it either sees the block or wrote its session before the sessions
// end.
func (s *Service) BlockUser(ctx context.Context, id, reason string) (int, error) {
	if utf8.RuneCountInString(reason) > MaxBlockReason || !utf8.ValidString(reason) {
		return 0, mplogin.Errorf(mplogin.CodeInvalidRequest, "the reason must be valid UTF-8 of at most %d characters", MaxBlockReason)
	}
	if err := s.store.SetBlocked(ctx, id, true, reason, s.now()); err != nil {
		return 0, adminStoreError("set blocked", err)
	}
	n, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: id, Now: s.now()})
	if err != nil {
		return 0, storeError("revoke user sessions", err)
	}
	return n, nil
}

// UnblockUser lifts a block: the user may log in again (their sessions
// stay ended). not_found when there is no such user.
func (s *Service) UnblockUser(ctx context.Context, id string) error {
	if err := s.store.SetBlocked(ctx, id, false, "", s.now()); err != nil {
		return adminStoreError("set blocked", err)
	}
	return nil
}

// EraseUser removes the user and everything of theirs (store.EraseUser):
// their sessions stop working, and a later login of one of their
// identities creates a new user. not_found when there is no such user.
func (s *Service) EraseUser(ctx context.Context, id string) error {
	if err := s.store.EraseUser(ctx, id, s.now()); err != nil {
		return adminStoreError("erase user", err)
	}
	return nil
}

// MergeUsers moves the identities and sessions of the user from to the
// user into and deletes from (store.MergeUsers). from's phone number goes
// to into when into has none, sealed again for into (a sealed number is
// bound to its user). not_found when either is missing; invalid_request
// when they are the same.
func (s *Service) MergeUsers(ctx context.Context, into, from string) error {
	if into == from {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "a user cannot be merged into itself")
	}
	ui, err := s.store.GetUser(ctx, into)
	if err != nil {
		return adminStoreError("get user", err)
	}
	uf, err := s.store.GetUser(ctx, from)
	if err != nil {
		return adminStoreError("get user", err)
	}
	if len(ui.Phone.Sealed) == 0 && len(uf.Phone.Sealed) > 0 {
		if err := s.movePhone(ctx, into, uf); err != nil {
			return err
		}
	}
	if err := s.store.MergeUsers(ctx, into, from, s.now()); err != nil {
		if errors.Is(err, store.ErrSelfMerge) {
			return mplogin.Wrap(mplogin.CodeInvalidRequest, "a user cannot be merged into itself", err)
		}
		return adminStoreError("merge users", err)
	}
	return nil
}

// movePhone gives into the phone number of from, sealed for into.
func (s *Service) movePhone(ctx context.Context, into string, from store.User) error {
	p, err := s.openPhone(from.ID, from.Phone.Sealed)
	if err != nil {
		// A number that does not open is left behind rather than moved
		// unreadable.
		s.log.LogAttrs(ctx, slog.LevelWarn, "a stored phone number does not open: not merged", slog.String("user", from.ID), slog.Any("error", err))
		return nil
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	sealed, err := s.keys.Seal(plain, phoneAAD(into))
	clear(plain)
	if err != nil {
		return mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	ph := from.Phone
	ph.Sealed = sealed
	if err := s.store.SetPhone(ctx, into, ph); err != nil {
		return adminStoreError("set phone", err)
	}
	return nil
}

// refuseBlocked answers user_blocked, and ends the session the login
// wrote, when the user of a login is blocked. The block is read after the
// login's write (by WriteLogin itself, or here): a block written before
// that read is seen, and one written after it ends the session itself
// (BlockUser revokes after it blocks).
func (s *Service) refuseBlocked(ctx context.Context, app *App, r *codeResult) error {
	blocked := r.blocked
	if !r.blockRead {
		u, err := s.store.GetUser(ctx, r.identity.UserID)
		if err != nil {
			return storeError("get user", err)
		}
		blocked = u.Blocked
	}
	if !blocked {
		return nil
	}
	if r.first != nil {
		if err := s.store.RevokeSession(ctx, r.first.session.ID, s.now()); err != nil {
			return storeError("revoke session", err)
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "login of a blocked user refused", slog.String("app", app.Name), slog.String("user", r.identity.UserID))
	return errBlocked
}

// Me is the user of an access token as User describes it: what the user
// may see of their own account (their identities, a masked phone).
func (s *Service) Me(ctx context.Context, accessToken string) (AdminUser, error) {
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return AdminUser{}, err
	}
	return s.User(ctx, sess.UserID)
}

// DeleteMe is the user's own deletion of their account: the erasure of
// EraseUser, for the user of a live access token.
func (s *Service) DeleteMe(ctx context.Context, accessToken string) error {
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return err
	}
	if err := s.EraseUser(ctx, sess.UserID); err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "account deleted by its user", slog.String("app", sess.App), slog.String("user", sess.UserID))
	return nil
}
