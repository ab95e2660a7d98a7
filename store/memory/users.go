package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// ListIdentities implements store.Users.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	if err := s.lock(ctx, "list identities"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.identitiesOf(userID), nil
}

// identitiesOf returns copies of the user's identities, oldest first, with
// the mutex held.
func (s *Store) identitiesOf(userID string) []store.Identity {
	var out []store.Identity
	for _, id := range s.identities {
		if id.UserID == userID {
			out = append(out, copyIdentity(id))
		}
	}
	slices.SortFunc(out, func(a, b store.Identity) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Family, b.Family),
			cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.OpenID, b.OpenID))
	})
	return out
}

// FindUserByUnionID implements store.Users.
func (s *Store) FindUserByUnionID(ctx context.Context, family platform.Family, unionID string) (store.User, error) {
	const op = "find user by unionid"
	if err := s.lock(ctx, op); err != nil {
		return store.User{}, err
	}
	defer s.mu.Unlock()
	u, ok := s.users[s.unionUser(family, unionID)]
	if !ok {
		return store.User{}, notFound(op)
	}
	u.Phone.Sealed, u.Phone.Lookup = clone(u.Phone.Sealed), clone(u.Phone.Lookup)
	return u, nil
}

// SetBlocked implements store.Users.
func (s *Store) SetBlocked(ctx context.Context, userID string, blocked bool, reason string, now time.Time) error {
	const op = "set blocked"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return notFound(op)
	}
	u.Blocked, u.BlockedReason, u.BlockedAt = blocked, reason, norm(now)
	if !blocked {
		u.BlockedReason, u.BlockedAt = "", time.Time{}
	}
	s.users[userID] = u
	return nil
}

// EraseUser implements store.UserAdmin.
func (s *Store) EraseUser(ctx context.Context, userID string, _ time.Time) error {
	const op = "erase user"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return notFound(op)
	}
	ids := s.identitiesOf(userID)
	s.eraseSessionsLocked(userID, ids)
	for _, id := range ids {
		key := identityKey{id.Family, id.AppID, id.OpenID}
		delete(s.identities, key)
		delete(s.attempts, key)
	}
	delete(s.users, userID)
	return nil
}

// EraseUserSessions implements store.Sessions.
func (s *Store) EraseUserSessions(ctx context.Context, userID string, ids []store.Identity) error {
	if err := s.lock(ctx, "erase user sessions"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.eraseSessionsLocked(userID, ids)
	return nil
}

// eraseSessionsLocked deletes the sessions of userID, with every index
// entry and refresh token, and the codes of ids.
func (s *Store) eraseSessionsLocked(userID string, ids []store.Identity) {
	of := make(map[identityKey]bool, len(ids))
	for _, id := range ids {
		of[identityKey{id.Family, id.AppID, id.OpenID}] = true
	}
	gone := make(map[string]bool)
	for sid, sess := range s.sessions {
		if sess.UserID == userID {
			gone[sid] = true
			delete(s.byAccess, string(sess.AccessHash))
			if p, ok := s.prevOf[sid]; ok {
				delete(s.byPrev, p)
			}
			delete(s.prevOf, sid)
			delete(s.last, sid)
			delete(s.sessions, sid)
		}
	}
	for h, tok := range s.refresh {
		if gone[tok.sessionID] {
			delete(s.refresh, h)
		}
	}
	for h, c := range s.codes {
		if of[identityKey{c.Family, c.AppID, c.OpenID}] {
			delete(s.codes, h)
		}
	}
}

// MergeUsers implements store.UserAdmin.
func (s *Store) MergeUsers(ctx context.Context, into, from string, _ time.Time) error {
	const op = "merge users"
	if into == from {
		return fmt.Errorf("memory: %s: %w", op, store.ErrSelfMerge)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	u, ok := s.users[into]
	f, ok2 := s.users[from]
	if !ok || !ok2 {
		return notFound(op)
	}
	for key, id := range s.identities {
		if id.UserID == from {
			id.UserID = into
			s.identities[key] = id
		}
	}
	s.moveSessionsLocked(into, from)
	if len(u.Phone.Sealed) == 0 && len(f.Phone.Sealed) > 0 {
		u.Phone = f.Phone
		s.users[into] = u
	}
	delete(s.users, from)
	return nil
}

// MoveUserSessions implements store.Sessions.
func (s *Store) MoveUserSessions(ctx context.Context, into, from string) error {
	if err := s.lock(ctx, "move user sessions"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.moveSessionsLocked(into, from)
	return nil
}

func (s *Store) moveSessionsLocked(into, from string) {
	for id, sess := range s.sessions {
		if sess.UserID == from {
			sess.UserID = into
			s.sessions[id] = sess
		}
	}
}

// ListUserSessions implements store.Sessions.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	if err := s.lock(ctx, "list user sessions"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now = norm(now)
	var out []store.Session
	for _, sess := range s.sessions {
		if sess.UserID == userID && rotatable(sess, now) {
			out = append(out, copySession(sess))
		}
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

// FindUsersByPhone implements store.Users. It scans every user: the
// memory store is for tests and demos, not for millions of users.
func (s *Store) FindUsersByPhone(ctx context.Context, lookups [][]byte) ([]store.User, error) {
	if err := s.lock(ctx, "find users by phone"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []store.User
	for _, u := range s.users {
		if len(u.Phone.Lookup) > 0 && slices.ContainsFunc(lookups, func(l []byte) bool { return bytes.Equal(l, u.Phone.Lookup) }) {
			u.Phone.Sealed, u.Phone.Lookup = clone(u.Phone.Sealed), clone(u.Phone.Lookup)
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b store.User) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	if len(out) > store.MaxPhoneHolders {
		out = out[:store.MaxPhoneHolders]
	}
	return out, nil
}
