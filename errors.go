package mplogin

import (
	"errors"
	"fmt"
	"time"
)

// Code is an error code a client sees (docs/api.md, "Errors").
type Code string

// The closed set of codes.
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeUnknownApp           Code = "unknown_app"
	CodeRequestTooLarge      Code = "request_too_large"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeInvalidCode          Code = "invalid_code"
	CodeInvalidToken         Code = "invalid_token"
	CodeInvalidGrant         Code = "invalid_grant"
	CodeInvalidClient        Code = "invalid_client"
	CodeUserBlocked          Code = "user_blocked"
	// CodeNotFound is the admin API's: no such user.
	CodeNotFound Code = "not_found"
	// CodePhoneConflict: with link_by_phone, the user proved a number
	// another user holds while bound to a different one.
	CodePhoneConflict       Code = "phone_conflict"
	CodeDecryptFailed       Code = "decrypt_failed"
	CodeRateLimited         Code = "rate_limited"
	CodePlatformError       Code = "platform_error"
	CodePlatformUnavailable Code = "platform_unavailable"
	CodeStoreUnavailable    Code = "store_unavailable"
	CodeInternal            Code = "internal_error"
)

// Error is an error with a public face: Code and Message go to the client,
// Err (the cause) only to the log.
type Error struct {
	Code    Code
	Message string
	// RetryAfter, when set, becomes the Retry-After header.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error without a cause, its message formatted as by
// fmt.Sprintf. The message is what the client reads: it must carry no
// secret.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with a cause for the log.
func Wrap(code Code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of err, or CodeInternal when it has none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
