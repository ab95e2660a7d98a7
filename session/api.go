package session

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mplogin/mplogin/secret"
)

// The platform calls beyond login, one interface per capability, so that
// a host without one leaves it nil instead of stubbing it. Each call is
// made with the app's platform access token (which the implementation gets
// from an accesstoken.Manager or the app's token source, and refetches once
// when the platform rejects it). Platform failures are *platform.Error; a
// call the app's configuration cannot make returns an error wrapping
// ErrNotSupported.

// PhoneResolver trades phone codes for phone numbers (WeChat
// getuserphonenumber).
type PhoneResolver interface {
	// PhoneNumber resolves a phone code of the user openID, sending the
	// openid with the code so that the platform refuses a code issued to
	// another user (KindInvalidCode).
	PhoneNumber(ctx context.Context, openID, code string) (PhoneNumber, error)
}

// SessionKeyChecker asks the platform about the session keys it issued
// (WeChat checksession and resetusersessionkey).
type SessionKeyChecker interface {
	// CheckSessionKey reports whether key is the user's current session
	// key.
	CheckSessionKey(ctx context.Context, openID string, key secret.String) (bool, error)
	// ResetSessionKey makes the platform issue the user a new session key
	// and returns it. A key the platform no longer accepts fails with an
	// error wrapping ErrSessionKeyRejected.
	ResetSessionKey(ctx context.Context, openID string, key secret.String) (secret.String, error)
}

// UnionIDFetcher fetches a user's unionid when the login did not carry it
// (Baidu getunionid, or unionId/get for a third-party platform).
type UnionIDFetcher interface {
	UnionID(ctx context.Context, openID string) (string, error)
}

// ErrNotSupported: the app's platform has no such call, or the app is not
// configured for it (no access token). The service answers it when the
// app's interface for the call is nil, too.
var ErrNotSupported = errors.New("not supported by this app's platform or configuration")

// ErrSessionKeyRejected: the platform no longer accepts the session key we
// hold for the identity (it expired, or a newer login replaced it).
// SessionKeyChecker implementations wrap it.
var ErrSessionKeyRejected = errors.New("the platform no longer accepts the stored session key")

// PhoneNumber is a user's phone number as the platform returns it. It is
// personal data: it formats itself as [redacted] in logs and fmt output.
type PhoneNumber struct {
	PhoneNumber     string `json:"phone_number"`      // with the country code for numbers outside mainland China
	PurePhoneNumber string `json:"pure_phone_number"` // without it
	CountryCode     string `json:"country_code"`
}

// LogValue keeps the number out of logs.
func (PhoneNumber) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the number out of fmt output.
func (PhoneNumber) String() string { return "[redacted]" }

// GoString keeps the number out of %#v output.
func (PhoneNumber) GoString() string { return "[redacted]" }
