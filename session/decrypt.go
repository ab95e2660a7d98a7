package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/userdata"
)

// MaxDecryptFailures is how many failed decryptions an identity's session
// key may have, whatever the sessions and however concurrent the requests.
// From then on it decrypts nothing until a new login brings a new key
// (docs/security.md, "Decrypting user data"): CBC
// without a MAC lets a client with unlimited tries read and forge data under
// the session key, one padding verdict at a time.
const MaxDecryptFailures = 5

// ErrDecryptFailed is every failure to decrypt or verify user data, whatever
// the cause (bad base64, wrong key, bad padding, wrong app id, stale
// watermark, bad signature, a locked session): one code and one message, so
// that a client cannot tell one cause from another. It carries no
// cause, so nothing about the payload reaches a log.
var ErrDecryptFailed = mplogin.Errorf(mplogin.CodeDecryptFailed, "the user data could not be decrypted or verified")

// DecryptInput is user data as the mini program received it from the
// platform.
type DecryptInput struct {
	EncryptedData string
	IV            string
	// RawData and Signature (WeChat) go together, or are both empty. When
	// given, Signature must be sha1(RawData + session_key) for the key that
	// decrypted EncryptedData.
	RawData   string
	Signature string
}

// LogValue keeps the payload out of logs, should an input ever be logged.
func (DecryptInput) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the payload out of fmt output, like LogValue.
func (DecryptInput) String() string { return "[redacted]" }

// Decrypt opens user data with the platform session key of the access
// token's identity and returns the plaintext JSON (WeChat: the whole object,
// watermark included; Baidu: the content).
//
// The current session key is tried first, then the previous one while its
// grace period lasts, so that data made just before a re-login still
// opens. Every failure is ErrDecryptFailed and adds one to the failure count
// of the identity's session key; once it has MaxDecryptFailures, every
// session of the identity gets ErrDecryptFailed without any key being tried,
// until a new login brings a new key. A success does not reset the count (a
// client could otherwise interleave good payloads with probes); it only
// gives back the one try it reserved.
func (s *Service) Decrypt(ctx context.Context, accessToken string, in DecryptInput) ([]byte, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	return s.decrypt(ctx, sess, in)
}

// DecryptAuthed is Decrypt for a session Authenticate returned, which it
// does not read again.
func (s *Service) DecryptAuthed(ctx context.Context, a *Authed, in DecryptInput) ([]byte, error) {
	sess, err := s.authed(a)
	if err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	return s.decrypt(ctx, sess, in)
}

// check refuses an input of the wrong shape, which is no decrypt failure.
func (in DecryptInput) check() error {
	if in.EncryptedData == "" || in.IV == "" {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `fields "encrypted_data" and "iv" are required`)
	}
	if (in.RawData == "") != (in.Signature == "") {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `fields "raw_data" and "signature" go together`)
	}
	return nil
}

// decrypt is Decrypt for a session already checked to be active.
//
// The cap is the identity's, per session key (store.ReserveDecryptAttempt):
// a try is reserved in the store before any key is tried, so that
// concurrent requests cannot overshoot it, and sessions of the same key (a
// replayed login code gives one) share it. A new login that brings a new
// key starts a new count. A success gives its reservation back; a failure
// keeps it, and nothing else lowers the count.
func (s *Service) decrypt(ctx context.Context, sess store.Session, in DecryptInput) ([]byte, error) {
	if app := s.apps[sess.App]; app.Family == platform.FamilyAlipay {
		return nil, mplogin.Wrap(mplogin.CodeInvalidRequest,
			"Alipay gives no session key, so there is nothing to decrypt with (phone numbers: POST /v1/phone)", ErrNotSupported)
	}
	id, err := s.store.GetIdentity(ctx, sess.Family, sess.AppID, sess.OpenID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrDecryptFailed // no key to try
	case err != nil:
		return nil, storeError("get identity", err)
	}
	n, ok, err := s.store.ReserveDecryptAttempt(ctx, sess.Family, sess.AppID, sess.OpenID, MaxDecryptFailures)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrDecryptFailed
	case err != nil:
		return nil, storeError("reserve decrypt attempt", err)
	case !ok:
		return nil, ErrDecryptFailed // the key's tries are spent: none is made
	}
	plain, ok, err := s.openUserdata(s.apps[sess.App], id, KeyAAD(sess.Family, sess.AppID, sess.OpenID), in)
	if err != nil || ok {
		// A success, or the server's fault (a sealed key that does not
		// open): the reservation goes back. Should that fail, the try stays
		// counted, which errs on the safe side.
		if rerr := s.store.ReleaseDecryptAttempt(context.WithoutCancel(ctx), sess.Family, sess.AppID, sess.OpenID); rerr != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "giving back a decrypt reservation failed",
				slog.String("app", sess.App), slog.String("user", sess.UserID), slog.Any("error", rerr))
		}
		if err != nil {
			return nil, err
		}
		return plain, nil
	}
	// The session keeps a count of its own failures too, for the record.
	if _, err := s.store.AddDecryptFailure(ctx, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError("add decrypt failure", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "decrypt failed",
		slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID), slog.Int("failures", n))
	if n == MaxDecryptFailures {
		s.log.LogAttrs(ctx, slog.LevelWarn, "decrypt failure cap reached: the session decrypts nothing more",
			slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID))
	}
	return nil, ErrDecryptFailed
}

// openUserdata tries the identity's current session key, then its previous
// one while PrevKeyExpiresAt is ahead. ok is false when no key opens and
// verifies in; err is set only when a sealed key does not open, which is the
// server's fault (a master key dropped from the configuration), not the
// client's.
func (s *Service) openUserdata(app *App, id store.Identity, aad []byte, in DecryptInput) (plain []byte, ok bool, err error) {
	sealed := [][]byte{id.SessionKey}
	if len(id.PrevSessionKey) > 0 && id.PrevKeyExpiresAt.After(s.now()) {
		sealed = append(sealed, id.PrevSessionKey)
	}
	for _, sk := range sealed {
		if len(sk) == 0 {
			continue // the platform gave no key
		}
		raw, err := s.keys.Open(sk, aad)
		if err != nil {
			return nil, false, mplogin.Wrap(mplogin.CodeInternal, "internal error", fmt.Errorf("open sealed session key: %w", err))
		}
		key := secret.New(string(raw))
		clear(raw)
		if keyTried != nil {
			keyTried()
		}
		if plain, ok := decryptWith(app, key, in, s.now); ok {
			return plain, true, nil
		}
	}
	return nil, false, nil
}

// keyTried, when set (by tests), is called each time a session key is
// tried on user data.
var keyTried func()

// decryptWith decrypts and verifies in under one session key.
func decryptWith(app *App, key secret.String, in DecryptInput, now func() time.Time) ([]byte, bool) {
	var (
		plain []byte
		err   error
	)
	opt := userdata.WeChatOptions{AppID: app.AppID, MaxAge: app.UserdataMaxAge, Now: now}
	switch app.Family {
	case platform.FamilyWeChat, platform.FamilyQQ:
		plain, err = userdata.DecryptWeChat(key, in.EncryptedData, in.IV, opt)
	case platform.FamilyDouyin:
		plain, err = userdata.DecryptDouyin(key, in.EncryptedData, in.IV, opt)
	case platform.FamilyKuaishou:
		plain, err = userdata.DecryptKuaishou(key, in.EncryptedData, in.IV)
	case platform.FamilyBaidu:
		plain, err = userdata.DecryptBaidu(key, in.EncryptedData, in.IV, app.AppID)
		// Baidu signs no rawData: a signature we cannot check is refused
		// rather than ignored.
		if err != nil || in.RawData != "" {
			return nil, false
		}
		return plain, true
	default:
		return nil, false
	}
	// The signature (sha1 of rawData and the session key, on every host
	// but Baidu) is checked whatever the decryption gave, so that the time
	// taken does not tell which of the two failed.
	signed := in.RawData == "" || userdata.VerifyRawData(key, in.RawData, in.Signature)
	if err != nil || !signed {
		return nil, false
	}
	return plain, true
}
