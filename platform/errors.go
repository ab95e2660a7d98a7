package platform

import (
	"context"
	"errors"
	"fmt"
)

// Kind is the closed set of ways a platform call can fail. The service maps
// each kind to one response; the platform's own code and message travel in
// Error for logs only.
type Kind int

const (
	// KindUnknown: the platform answered with an error we do not know.
	KindUnknown Kind = iota
	// KindInvalidCode: the code is invalid, expired or belongs to another app.
	KindInvalidCode
	// KindCodeUsed: the code was already exchanged.
	KindCodeUsed
	// KindRateLimited: a quota of the platform was hit.
	KindRateLimited
	// KindUserBlocked: the platform blocks this user (WeChat 40226).
	KindUserBlocked
	// KindBadCredentials: the platform refused our credentials or request:
	// wrong appid or secret, a missing parameter, an app not authorised.
	// This is a misconfiguration, not the user's fault.
	KindBadCredentials
	// KindTokenInvalid: the access token we sent is invalid or expired; fetch
	// a new one.
	KindTokenInvalid
	// KindBusy: the platform said it is busy (WeChat -1); try again later.
	KindBusy
	// KindUnavailable: no usable answer: connection failed, timed out, a
	// non-2xx status without a known error, an empty, truncated or non-JSON
	// body.
	KindUnavailable
)

var kindNames = [...]string{
	KindUnknown:        "unknown",
	KindInvalidCode:    "invalid_code",
	KindCodeUsed:       "code_used",
	KindRateLimited:    "rate_limited",
	KindUserBlocked:    "user_blocked",
	KindBadCredentials: "bad_credentials",
	KindTokenInvalid:   "token_invalid",
	KindBusy:           "busy",
	KindUnavailable:    "unavailable",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// UserError reports whether the failure is the user's or the client's
// (their code, their block, their quota) rather than the platform's health.
// A circuit breaker must not count these.
func (k Kind) UserError() bool {
	switch k {
	case KindInvalidCode, KindCodeUsed, KindUserBlocked, KindRateLimited:
		return true
	}
	return false
}

// Error is a failed platform call.
type Error struct {
	// Host is who failed: a host's Family ("wechat", "baidu"), or
	// "token-service" (URLTokenSource), or "accesstoken" (a shared token
	// that could not be had).
	Host     string
	Endpoint string // the path called, without query: "/sns/jscode2session"
	Kind     Kind
	// Code and Message are the platform's own ("40029", "invalid code, rid:
	// …"; "invalid_grant", "…"); for logs, never for clients.
	Code    string
	Message string
	Status  int   // HTTP status, 0 when there was no response
	Err     error // the transport or decoding error, if any
}

func (e *Error) Error() string {
	s := e.Host + " " + e.Endpoint + ": " + e.Kind.String()
	if e.Code != "" {
		s += " (" + e.Code
		if e.Message != "" {
			s += " " + e.Message
		}
		s += ")"
	}
	if e.Status != 0 && e.Status/100 != 2 {
		s += fmt.Sprintf(" [HTTP %d]", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a platform error, KindUnavailable for a context
// error, and KindUnknown for anything else.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return KindUnavailable
	}
	return KindUnknown
}
