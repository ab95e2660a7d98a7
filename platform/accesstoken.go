package platform

import (
	"errors"
	"time"

	"github.com/mplogin/mplogin/secret"
)

// MaxTokenLifetime caps the lifetime read from an expires_in. Real tokens
// live 2 hours (WeChat) to 30 days (Baidu); a larger number is taken as this
// much, which keeps the arithmetic from overflowing and only makes us
// refresh sooner than needed.
const MaxTokenLifetime = 366 * 24 * time.Hour

// TokenLifetime converts an expires_in in seconds, capped at
// MaxTokenLifetime; false when it is not positive.
func TokenLifetime(expiresIn Int) (time.Duration, bool) {
	if expiresIn <= 0 {
		return 0, false
	}
	if expiresIn >= Int(MaxTokenLifetime/time.Second) {
		return MaxTokenLifetime, true
	}
	return time.Duration(expiresIn) * time.Second, true
}

// CheckAccessToken turns the fields of a success answer to a token fetch
// into the token and its lifetime, refusing an answer without a token or
// without a positive expires_in.
func CheckAccessToken(platformName, endpoint string, status int, token string, expiresIn Int) (secret.String, time.Duration, error) {
	life, ok := TokenLifetime(expiresIn)
	if token == "" || !ok {
		return secret.String{}, 0, &Error{Platform: platformName, Endpoint: endpoint, Kind: KindUnknown, Status: status,
			Err: errors.New("answer without access_token or a positive expires_in")}
	}
	return secret.New(token), life, nil
}
