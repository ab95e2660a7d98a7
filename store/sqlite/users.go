package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// UpsertIdentity implements store.Users. It runs as one IMMEDIATE
// transaction on the single writer connection, so concurrent calls for the
// same new identity are serialised and only the first creates a user.
func (s *Store) UpsertIdentity(ctx context.Context, in store.IdentityUpsert) (store.Identity, bool, error) {
	const op = "upsert identity"
	if in.Family == "" || in.AppID == "" || in.OpenID == "" {
		return store.Identity{}, false, fmt.Errorf("sqlite: %s: empty family, app ID or open ID", op)
	}
	var (
		id      store.Identity
		created bool
	)
	err := s.inTx(ctx, op, func(ctx context.Context, tx wtx) error {
		var err error
		id, created, _, err = upsertIdentity(ctx, tx, in)
		return err
	})
	if err != nil {
		return store.Identity{}, false, err
	}
	return id, created, nil
}

// upsertIdentity updates or creates the identity, and reads whether its
// user is blocked (a user it creates is not).
func upsertIdentity(ctx context.Context, tx wtx, in store.IdentityUpsert) (_ store.Identity, created, blocked bool, _ error) {
	now := trunc(in.Now)
	id, err := scanIdentity(tx.updateIdentity.QueryRowContext(ctx,
		blob(in.SealedSessionKey), micros(trunc(in.Now.Add(in.KeyGrace))),
		micros(now), in.Family, in.AppID, in.OpenID), &blocked)
	switch {
	case err == nil && (in.UnionID == "" || id.UnionID != ""):
		return id, false, blocked, nil
	case err == nil:
		_, err := tx.setUnionID.ExecContext(ctx, in.UnionID, in.Family, in.AppID, in.OpenID)
		if err != nil {
			return store.Identity{}, false, false, fmt.Errorf("set unionid: %w", err)
		}
		id.UnionID = in.UnionID
		return id, false, blocked, nil
	case !errors.Is(err, sql.ErrNoRows):
		return store.Identity{}, false, false, fmt.Errorf("update identity: %w", err)
	}

	// A new identity: join the user of its unionid, or create one.
	var userID string
	if in.UnionID != "" {
		err := tx.unionUser.QueryRowContext(ctx, in.Family, in.UnionID).Scan(&userID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return store.Identity{}, false, false, fmt.Errorf("find unionid: %w", err)
		}
	}
	created = userID == ""
	if created {
		if in.NewUserID == "" {
			return store.Identity{}, false, false, errors.New("empty new user ID")
		}
		userID = in.NewUserID
		if _, err := tx.insertUser.ExecContext(ctx, userID, micros(now)); err != nil {
			return store.Identity{}, false, false, fmt.Errorf("insert user: %w", err)
		}
	} else {
		if err := tx.userBlocked.QueryRowContext(ctx, userID).Scan(&blocked); err != nil {
			return store.Identity{}, false, false, fmt.Errorf("get user: %w", err)
		}
	}
	id = store.Identity{
		Family:     in.Family,
		AppID:      in.AppID,
		OpenID:     in.OpenID,
		UnionID:    in.UnionID,
		UserID:     userID,
		SessionKey: none(bytes.Clone(in.SealedSessionKey)),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	_, err = tx.insertIdentity.ExecContext(ctx,
		id.Family, id.AppID, id.OpenID, nullString(id.UnionID), id.UserID,
		blob(id.SessionKey), nil, nil, micros(id.CreatedAt), micros(id.UpdatedAt))
	if err != nil {
		return store.Identity{}, false, false, fmt.Errorf("insert identity: %w", err)
	}
	return id, created, blocked, nil
}

// GetIdentity implements store.Users.
func (s *Store) GetIdentity(ctx context.Context, family platform.Family, appID, openID string) (store.Identity, error) {
	id, err := scanIdentity(s.r.getIdentity.QueryRowContext(ctx, family, appID, openID))
	if err != nil {
		return store.Identity{}, s.fail(ctx, "get identity", err)
	}
	return id, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.r.getUser.QueryRowContext(ctx, id))
	if err != nil {
		return store.User{}, s.fail(ctx, "get user", err)
	}
	return u, nil
}

// scanUser reads a row of getUserSQL's columns.
func scanUser(row scanner) (store.User, error) {
	var (
		u                            store.User
		created, phoneAt, blockedAt  sql.NullInt64
		phoneSrc, phoneApp, blockedR sql.NullString
	)
	err := row.Scan(&u.ID, &created, &u.Phone.Sealed, &u.Phone.Lookup, &phoneSrc, &phoneApp, &phoneAt,
		&u.Blocked, &blockedR, &blockedAt)
	if err != nil {
		return store.User{}, err
	}
	u.CreatedAt = fromMicros(created)
	u.Phone.Sealed, u.Phone.Lookup = none(u.Phone.Sealed), none(u.Phone.Lookup)
	u.Phone.Source, u.Phone.App = phoneSrc.String, phoneApp.String
	u.Phone.UpdatedAt = fromMicros(phoneAt)
	u.BlockedReason, u.BlockedAt = blockedR.String, fromMicros(blockedAt)
	return u, nil
}

// SetPhone implements store.Users.
func (s *Store) SetPhone(ctx context.Context, userID string, p store.Phone) error {
	const op = "set phone"
	if len(p.Sealed) == 0 {
		return fmt.Errorf("sqlite: %s: empty sealed number", op)
	}
	return s.updateOne(ctx, op, func(ctx context.Context, tx wtx) (sql.Result, error) {
		return tx.setPhone.ExecContext(ctx, p.Sealed, none(p.Lookup), p.Source, p.App, micros(p.UpdatedAt), userID)
	})
}

func scanIdentity(row scanner, more ...any) (store.Identity, error) {
	var (
		id                        store.Identity
		union                     sql.NullString
		prevExp, created, updated sql.NullInt64
	)
	err := row.Scan(append([]any{&id.Family, &id.AppID, &id.OpenID, &union, &id.UserID,
		&id.SessionKey, &id.PrevSessionKey, &prevExp, &created, &updated}, more...)...)
	if err != nil {
		return store.Identity{}, err
	}
	id.UnionID = union.String
	id.SessionKey = none(id.SessionKey)
	id.PrevSessionKey = none(id.PrevSessionKey)
	id.PrevKeyExpiresAt = fromMicros(prevExp)
	id.CreatedAt = fromMicros(created)
	id.UpdatedAt = fromMicros(updated)
	return id, nil
}

const (
	// reserveAttemptSQL is the check and the increment in one statement,
	// which SQLite runs under its write lock.
	reserveAttemptSQL = `UPDATE identities SET decrypt_attempts = decrypt_attempts + 1
		WHERE platform = ? AND app_id = ? AND open_id = ? AND decrypt_attempts < ?
		RETURNING decrypt_attempts`
	releaseAttemptSQL = `UPDATE identities
		SET decrypt_attempts = max(decrypt_attempts - 1, 0)
		WHERE platform = ? AND app_id = ? AND open_id = ?`
	attemptsSQL = `SELECT decrypt_attempts FROM identities
		WHERE platform = ? AND app_id = ? AND open_id = ?`
)

// ReserveDecryptAttempt implements store.Users: the one UPDATE decides;
// when it changes no row, a read tells a full count from an unknown
// identity.
func (s *Store) ReserveDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string, max int) (int, bool, error) {
	const op = "reserve decrypt attempt"
	var (
		n               int
		reserved, known bool
	)
	// Plain: an unknown identity is an answer, not a failure of the batch.
	err := s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error {
		reserved, known = false, true
		err := tx.QueryRowContext(ctx, reserveAttemptSQL, family, appID, openID, max).Scan(&n)
		if err == nil {
			reserved = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRowContext(ctx, attemptsSQL, family, appID, openID).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			known = false
			return nil
		}
		return err
	})
	if err == nil && !known {
		err = s.fail(ctx, op, sql.ErrNoRows)
	}
	if err != nil {
		return 0, false, err
	}
	return n, reserved, nil
}

// ReleaseDecryptAttempt implements store.Users.
func (s *Store) ReleaseDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string) error {
	return s.updateOne(ctx, "release decrypt attempt", func(ctx context.Context, tx wtx) (sql.Result, error) {
		return tx.ExecContext(ctx, releaseAttemptSQL, family, appID, openID)
	})
}
