package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

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
	// Alipay is what an Alipay app's my.getPhoneNumber gave, for an Alipay
	// app only: a payload Alipay signed and encrypted with the app's key.
	Alipay *AlipayPhone
}

// AlipayPhone is the answer of Alipay's my.getPhoneNumber, its fields as
// the mini program got them.
type AlipayPhone struct {
	Response, Sign, SignType, EncryptType, Charset string
}

// AlipayPhoneOpener opens an AlipayPhone: it checks Alipay's signature,
// decrypts with the app's AES key, and returns the mobile number. Every
// failure is one error, whatever its cause.
type AlipayPhoneOpener interface {
	OpenPhone(p AlipayPhone) (mobile string, err error)
}

// LogValue keeps the answer out of logs.
func (AlipayPhone) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// LogValue keeps the input out of logs.
func (PhoneInput) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the input out of fmt output.
func (PhoneInput) String() string { return "[redacted]" }

// Phone resolves the phone number of the access token's user and records it
// on the user, sealed, with where it came from. A phone code is single
// use and is sent to the platform once; a payload goes through Decrypt's
// rules (current then previous key, one decrypt_failed for every cause,
// counted against the session key's MaxDecryptFailures).
//
// With Policy.LinkByPhone, a number another user already holds joins the
// caller's user to that one (linkByPhone): only numbers the platform bound
// to the caller count, a phone code resolved with the session's openid or
// a payload opened with its session key.
func (s *Service) Phone(ctx context.Context, accessToken string, in PhoneInput) (PhoneResult, error) {
	if err := in.check(); err != nil {
		return PhoneResult{}, err
	}
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return PhoneResult{}, err
	}
	return s.phone(ctx, sess, in)
}

// PhoneAuthed is Phone for a session Authenticate returned, which it does
// not read again.
func (s *Service) PhoneAuthed(ctx context.Context, a *Authed, in PhoneInput) (PhoneResult, error) {
	sess, err := s.authed(a)
	if err != nil {
		return PhoneResult{}, err
	}
	if err := in.check(); err != nil {
		return PhoneResult{}, err
	}
	return s.phone(ctx, sess, in)
}

// check refuses an input of the wrong shape: a code, a payload, or an
// Alipay answer, one of them.
func (in PhoneInput) check() error {
	if in.Alipay != nil {
		if in.Code != "" || in.EncryptedData != "" || in.IV != "" {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, `an Alipay answer ("response", "sign", …) goes alone`)
		}
		if in.Alipay.Response == "" || in.Alipay.Sign == "" {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, `fields "response" and "sign" are required`)
		}
		return nil
	}
	if (in.Code != "") == (in.EncryptedData != "" || in.IV != "") {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `give either "code" or "encrypted_data" and "iv"`)
	}
	if len(in.Code) > MaxCodeLen {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "code must be 1 to %d bytes", MaxCodeLen)
	}
	return nil
}

// PhoneResult is what Phone answers: the number, the user it is now
// recorded on, and whether proving it joined the caller's user to another
// (Policy.LinkByPhone).
type PhoneResult struct {
	Number PhoneNumber
	// UserID is the user the number is recorded on: the caller's, or the
	// one it was linked to.
	UserID string
	Linked bool
}

var errPhoneConflict = mplogin.Errorf(mplogin.CodePhoneConflict,
	"another user holds this phone number, and this user is bound to a different one; an operator can merge them")

// phone is Phone for a session already checked to be active.
func (s *Service) phone(ctx context.Context, sess store.Session, in PhoneInput) (PhoneResult, error) {
	app := s.apps[sess.App]
	var (
		p      PhoneNumber
		source string
		err    error
	)
	switch {
	case (in.Alipay != nil) != (app.Family == platform.FamilyAlipay):
		if in.Alipay != nil {
			return PhoneResult{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "an Alipay phone answer is for Alipay apps only")
		}
		return PhoneResult{}, mplogin.Errorf(mplogin.CodeInvalidRequest, `an Alipay app takes my.getPhoneNumber's answer ("response", "sign", …)`)
	case in.Alipay != nil:
		source = store.PhoneFromUserData
		if p, err = s.alipayPhone(ctx, sess, app, *in.Alipay); err != nil {
			return PhoneResult{}, err
		}
	case in.Code != "":
		source = store.PhoneFromPlatform
		if p, err = s.phoneByCode(ctx, app, sess.OpenID, in.Code); err != nil {
			return PhoneResult{}, err
		}
	default:
		source = store.PhoneFromUserData
		plain, err := s.decrypt(ctx, sess, DecryptInput{EncryptedData: in.EncryptedData, IV: in.IV})
		if err != nil {
			return PhoneResult{}, err
		}
		var ok bool
		if p, ok = parsePhone(app.Family, plain); !ok {
			// It opened, but holds no phone number (user info, say).
			return PhoneResult{}, ErrDecryptFailed
		}
	}
	res := PhoneResult{Number: p, UserID: sess.UserID}
	var lookup []byte
	if key := phoneKey(p); key != "" {
		lookup = s.keys.Lookup(phonePurpose, []byte(key))
		if s.policy.LinkByPhone && boundToCaller(app, in) {
			into, err := s.linkByPhone(ctx, app, sess.UserID, key)
			if err != nil {
				return PhoneResult{}, err
			}
			if into != "" {
				res.UserID, res.Linked = into, true
			}
		}
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return PhoneResult{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	sealed, err := s.keys.Seal(plain, phoneAAD(res.UserID))
	clear(plain)
	if err != nil {
		return PhoneResult{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	err = s.store.SetPhone(ctx, res.UserID, store.Phone{Sealed: sealed, Lookup: lookup, Source: source, App: app.Name, UpdatedAt: s.now()})
	if err != nil {
		return PhoneResult{}, storeError("set phone", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "phone number recorded",
		slog.String("app", app.Name), slog.String("user", res.UserID), slog.String("source", source))
	return res, nil
}

// boundToCaller tells whether the host bound the number of in to the
// session's user: a payload opens only under the user's session key, and
// a WeChat phone code is traded with the user's openid. A Douyin phone code
// is traded without one, and an Alipay answer names no user, so another
// user's would give another user's number: they record the number but link
// nobody.
func boundToCaller(app *App, in PhoneInput) bool {
	switch {
	case in.Alipay != nil:
		return false
	case in.Code != "":
		return app.Family == platform.FamilyWeChat
	}
	return true
}

// alipayPhone opens an Alipay app's my.getPhoneNumber answer. Its failures
// are the one decrypt_failed and count against the session: after
// MaxDecryptFailures of them the session opens none. (The identity's count
// of decrypt's rule follows a session key, which Alipay does not have.)
func (s *Service) alipayPhone(ctx context.Context, sess store.Session, app *App, in AlipayPhone) (PhoneNumber, error) {
	if app.AlipayPhones == nil {
		return PhoneNumber{}, notSupported("phone numbers (no aes_key)")
	}
	if sess.DecryptFailures >= MaxDecryptFailures {
		return PhoneNumber{}, ErrDecryptFailed
	}
	mobile, err := app.AlipayPhones.OpenPhone(in)
	if err != nil || mobile == "" {
		n, aerr := s.store.AddDecryptFailure(ctx, sess.ID)
		if aerr != nil && !errors.Is(aerr, store.ErrNotFound) {
			return PhoneNumber{}, storeError("add decrypt failure", aerr)
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "decrypt failed",
			slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID), slog.Int("failures", n))
		return PhoneNumber{}, ErrDecryptFailed
	}
	// Alipay gives mainland numbers, without a country code.
	return PhoneNumber{PhoneNumber: mobile, PurePhoneNumber: mobile, CountryCode: "86"}, nil
}

// linkByPhone joins the user userID, who just proved the number whose
// lookup key is key, to another user holding that number, and returns
// that user's id; "" when no other user holds it. The holder survives
// (the oldest, when several do): it held the number first. The caller's
// user is merged into it whole (MergeUsers), so that its sessions move and
// keep working. A caller bound to a different number is a conflict, and a
// blocked holder refuses the link: neither changes anything.
func (s *Service) linkByPhone(ctx context.Context, app *App, userID, key string) (string, error) {
	lookups := s.keys.Lookups(phonePurpose, []byte(key))
	holders, err := s.store.FindUsersByPhone(ctx, lookups)
	if err != nil {
		return "", storeError("find users by phone", err)
	}
	i := slices.IndexFunc(holders, func(u store.User) bool { return u.ID != userID })
	if i < 0 {
		return "", nil
	}
	into := holders[i]
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return "", storeError("get user", err)
	}
	if len(u.Phone.Sealed) > 0 && !s.holdsPhone(ctx, u, lookups, key) {
		return "", errPhoneConflict
	}
	if into.Blocked {
		s.log.LogAttrs(ctx, slog.LevelInfo, "link by phone refused: the holder is blocked",
			slog.String("app", app.Name), slog.String("user", userID), slog.String("holder", into.ID))
		return "", errBlocked
	}
	if err := s.MergeUsers(ctx, into.ID, userID); err != nil {
		return "", err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "users linked by phone number",
		slog.String("app", app.Name), slog.String("user", into.ID), slog.String("from", userID))
	return into.ID, nil
}

// holdsPhone tells whether u's recorded number is the one of key: by its
// lookup, or, for a number recorded without one, by opening it.
func (s *Service) holdsPhone(ctx context.Context, u store.User, lookups [][]byte, key string) bool {
	if len(u.Phone.Lookup) > 0 {
		return slices.ContainsFunc(lookups, func(l []byte) bool { return bytes.Equal(l, u.Phone.Lookup) })
	}
	p, err := s.openPhone(u.ID, u.Phone.Sealed)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "a stored phone number does not open", slog.String("user", u.ID), slog.Any("error", err))
		return false
	}
	return phoneKey(p) == key
}

// phonePurpose keeps phone lookups apart from lookups of anything else.
const phonePurpose = "phone"

// phoneKey is the number of p as a lookup holds it: the country code's
// digits (86 when none is given) and the national number's; "" when p
// has no digits. WeChat gives both parts; Baidu mainland numbers only.
func phoneKey(p PhoneNumber) string {
	national := digits(p.PurePhoneNumber)
	if national == "" {
		full := strings.TrimSpace(p.PhoneNumber)
		if strings.HasPrefix(full, "+") {
			return digits(full)
		}
		national = digits(full)
	}
	if national == "" {
		return ""
	}
	cc := digits(p.CountryCode)
	if cc == "" {
		cc = "86"
	}
	return cc + national
}

// phoneQueryKey reads a number an operator types: +CC and the number in
// any grouping (+86 138-0000-0000), or a mainland number without +86.
func phoneQueryKey(q string) (string, bool) {
	q = strings.TrimSpace(q)
	for _, r := range q {
		if !(r >= '0' && r <= '9' || r == '+' || r == ' ' || r == '-' || r == '(' || r == ')') {
			return "", false
		}
	}
	d := digits(q)
	if len(d) < 5 || len(d) > 20 || strings.LastIndex(q, "+") > 0 {
		return "", false
	}
	if strings.HasPrefix(q, "+") {
		return d, true
	}
	return "86" + d, true
}

func digits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
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
// {"phoneNumber","purePhoneNumber","countryCode",…} (Douyin's, QQ's and
// Kuaishou's too), Baidu's {"mobile"}.
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
	case platform.FamilyWeChat, platform.FamilyQQ, platform.FamilyDouyin, platform.FamilyKuaishou:
		// WeChat's fields, which the hosts that copied its model share.
		if v.PhoneNumber == "" {
			return PhoneNumber{}, false
		}
		return PhoneNumber{PhoneNumber: v.PhoneNumber, PurePhoneNumber: v.PurePhoneNumber, CountryCode: v.CountryCode}, true
	case platform.FamilyBaidu:
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
