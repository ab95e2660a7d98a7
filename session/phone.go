package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// PhoneInput is what POST /v1/phone takes: a WeChat phone code from the
// getPhoneNumber button (preferred: the number comes server to server; see
// docs/security.md, "Phone numbers"), or an encrypted payload (WeChat's legacy
// button, Baidu) that the session key opens.
type PhoneInput struct {
	Code          string
	EncryptedData string
	IV            string
}

// LogValue keeps the input out of logs.
func (PhoneInput) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the input out of fmt output.
func (PhoneInput) String() string { return "[redacted]" }

// Phone resolves the phone number of the access token's user and records it
// on the user, sealed, with where it came from. A phone code is single
// use and is sent to the platform once; a payload goes through Decrypt's
// rules (current then previous key, one decrypt_failed for every cause,
// counted against the session key's MaxDecryptFailures).
func (s *Service) Phone(ctx context.Context, accessToken string, in PhoneInput) (PhoneNumber, error) {
	if err := in.check(); err != nil {
		return PhoneNumber{}, err
	}
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return PhoneNumber{}, err
	}
	return s.phone(ctx, sess, in)
}

// PhoneAuthed is Phone for a session Authenticate returned, which it does
// not read again.
func (s *Service) PhoneAuthed(ctx context.Context, a *Authed, in PhoneInput) (PhoneNumber, error) {
	sess, err := s.authed(a)
	if err != nil {
		return PhoneNumber{}, err
	}
	if err := in.check(); err != nil {
		return PhoneNumber{}, err
	}
	return s.phone(ctx, sess, in)
}

// check refuses an input of the wrong shape: a code, or a payload, not both.
func (in PhoneInput) check() error {
	if (in.Code != "") == (in.EncryptedData != "" || in.IV != "") {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `give either "code" or "encrypted_data" and "iv"`)
	}
	if len(in.Code) > MaxCodeLen {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "code must be 1 to %d bytes", MaxCodeLen)
	}
	return nil
}

// phone is Phone for a session already checked to be active.
func (s *Service) phone(ctx context.Context, sess store.Session, in PhoneInput) (PhoneNumber, error) {
	app := s.apps[sess.App]
	var (
		p      PhoneNumber
		source string
		err    error
	)
	if in.Code != "" {
		source = store.PhoneFromPlatform
		if p, err = s.phoneByCode(ctx, app, sess.OpenID, in.Code); err != nil {
			return PhoneNumber{}, err
		}
	} else {
		source = store.PhoneFromUserData
		plain, err := s.decrypt(ctx, sess, DecryptInput{EncryptedData: in.EncryptedData, IV: in.IV})
		if err != nil {
			return PhoneNumber{}, err
		}
		var ok bool
		if p, ok = parsePhone(app.Family, plain); !ok {
			// It opened, but holds no phone number (user info, say).
			return PhoneNumber{}, ErrDecryptFailed
		}
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return PhoneNumber{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	sealed, err := s.keys.Seal(plain, phoneAAD(sess.UserID))
	clear(plain)
	if err != nil {
		return PhoneNumber{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	err = s.store.SetPhone(ctx, sess.UserID, store.Phone{Sealed: sealed, Source: source, App: app.Name, UpdatedAt: s.now()})
	if err != nil {
		return PhoneNumber{}, storeError("set phone", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "phone number recorded",
		slog.String("app", app.Name), slog.String("user", sess.UserID), slog.String("source", source))
	return p, nil
}

// phoneByCode trades a phone code of the session's user openID. The openid
// goes with the code: without it, a code obtained from someone else would
// bind their number to this user.
func (s *Service) phoneByCode(ctx context.Context, app *App, openID, code string) (PhoneNumber, error) {
	if app.Phones == nil {
		return PhoneNumber{}, notSupported("phone codes")
	}
	pctx, cancel := context.WithTimeout(ctx, s.policy.PlatformTimeout)
	defer cancel()
	p, err := app.Phones.PhoneNumber(pctx, openID, code)
	switch {
	case errors.Is(err, ErrNotSupported):
		return PhoneNumber{}, notSupported("phone codes")
	case err == nil:
		if p.PhoneNumber == "" {
			return PhoneNumber{}, mplogin.Wrap(mplogin.CodePlatformError, "the platform answered without a phone number", errors.New("empty phone number"))
		}
		return p, nil
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "platform phone number failed", slog.String("app", app.Name), slog.Any("error", err))
	if k := platform.KindOf(err); k == platform.KindInvalidCode || k == platform.KindCodeUsed {
		return PhoneNumber{}, &mplogin.Error{Code: mplogin.CodeInvalidCode,
			Message: "the platform rejected the phone code (invalid, expired, already used or another user's)", Err: err}
	}
	return PhoneNumber{}, platformError(err)
}

// parsePhone reads a decrypted phone payload: WeChat's
// {"phoneNumber","purePhoneNumber","countryCode",…}, Baidu's {"mobile"}.
func parsePhone(family platform.Family, plain []byte) (PhoneNumber, bool) {
	var v struct {
		PhoneNumber     string `json:"phoneNumber"`
		PurePhoneNumber string `json:"purePhoneNumber"`
		CountryCode     string `json:"countryCode"`
		Mobile          string `json:"mobile"`
	}
	if json.Unmarshal(plain, &v) != nil {
		return PhoneNumber{}, false
	}
	switch family {
	case "wechat":
		if v.PhoneNumber == "" {
			return PhoneNumber{}, false
		}
		return PhoneNumber{PhoneNumber: v.PhoneNumber, PurePhoneNumber: v.PurePhoneNumber, CountryCode: v.CountryCode}, true
	case "baidu":
		// Baidu gives mainland numbers only, without a country code.
		if v.Mobile == "" {
			return PhoneNumber{}, false
		}
		return PhoneNumber{PhoneNumber: v.Mobile, PurePhoneNumber: v.Mobile, CountryCode: "86"}, true
	}
	return PhoneNumber{}, false
}

// StoredPhone returns the phone number recorded for a user and where it
// came from (store.PhoneFromPlatform or store.PhoneFromUserData); ok is
// false when none is recorded.
func (s *Service) StoredPhone(ctx context.Context, userID string) (p PhoneNumber, source string, ok bool, err error) {
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return PhoneNumber{}, "", false, nil
	}
	if err != nil {
		return PhoneNumber{}, "", false, storeError("get user", err)
	}
	if len(u.Phone.Sealed) == 0 {
		return PhoneNumber{}, "", false, nil
	}
	plain, err := s.keys.Open(u.Phone.Sealed, phoneAAD(userID))
	if err != nil {
		return PhoneNumber{}, "", false, mplogin.Wrap(mplogin.CodeInternal, "internal error", fmt.Errorf("open sealed phone: %w", err))
	}
	defer clear(plain)
	if err := json.Unmarshal(plain, &p); err != nil {
		return PhoneNumber{}, "", false, mplogin.Wrap(mplogin.CodeInternal, "internal error", fmt.Errorf("stored phone: %w", err))
	}
	return p, u.Phone.Source, true, nil
}

// phoneAAD binds a sealed phone number to its user.
func phoneAAD(userID string) []byte { return []byte("phone\x00" + userID) }

func notSupported(what string) error {
	return mplogin.Wrap(mplogin.CodeInvalidRequest, what+" are not available for this app (its platform has none, or no access token is configured)", ErrNotSupported)
}
