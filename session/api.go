package session

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mplogin/mplogin/secret"
)

// API is an app's platform calls beyond login, each made with the app's
// platform access token (which the implementation gets from an
// accesstoken.Manager or the app's token source, and refetches once when
// the platform rejects it). A call the app's platform does not have returns
// an error wrapping ErrNotSupported; platform failures are
// *platform.Error.
type API interface {
	// PhoneNumber resolves a WeChat phone code (getuserphonenumber) of the
	// user openID, sending the openid with the code so that the platform
	// refuses a code issued to another user (KindInvalidCode).
	PhoneNumber(ctx context.Context, openID, code string) (PhoneNumber, error)
	// CheckSessionKey asks the platform whether key is the user's current
	// session key (WeChat checksession): true when it is.
	CheckSessionKey(ctx context.Context, openID string, key secret.String) (bool, error)
	// ResetSessionKey makes the platform issue the user a new session key
	// (WeChat resetusersessionkey) and returns it.
	ResetSessionKey(ctx context.Context, openID string, key secret.String) (secret.String, error)
	// UnionID fetches the user's unionid (Baidu getunionid, or unionId/get
	// for a third-party platform).
	UnionID(ctx context.Context, openID string) (string, error)
}

// ErrNotSupported: the app's platform has no such call, or the app is not
// configured for it (no access token).
var ErrNotSupported = errors.New("not supported by this app's platform or configuration")

// ErrSessionKeyRejected: the platform no longer accepts the session key we
// hold for the identity (it expired, or a newer login replaced it). API
// implementations wrap it.
var ErrSessionKeyRejected = errors.New("the platform no longer accepts the stored session key")

// PhoneNumber is a user's phone number as the API returns it. It is
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
