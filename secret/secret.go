// Package secret holds String, a value that redacts itself wherever it is
// printed, logged or marshalled, so that app secrets, session keys and access
// tokens cannot reach an error string, a log line or a response by accident.
// The only way to read the value is Reveal, which makes every use greppable.
package secret

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Redacted is what every rendering of a non-empty String prints.
const Redacted = "[redacted]"

// String is a secret string. Its zero value is the empty secret.
type String struct {
	v string
}

// New wraps s.
func New(s string) String { return String{v: s} }

// Reveal returns the secret itself. Call it only where the value must go to
// the platform or into a cipher.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// Equal compares two secrets in constant time for equal lengths.
func (s String) Equal(o String) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(o.v)) == 1
}

func (s String) render() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// String implements fmt.Stringer.
func (s String) String() string { return s.render() }

// GoString implements fmt.GoStringer, for %#v.
func (s String) GoString() string { return "secret.String(" + s.render() + ")" }

// Format implements fmt.Formatter so that every verb (%x and %q included)
// prints the placeholder.
func (s String) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.render()))
}

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(s.render()) }

// MarshalText implements encoding.TextMarshaler (and so JSON) with the
// placeholder: a secret never leaves the process through an encoder.
func (s String) MarshalText() ([]byte, error) { return []byte(s.render()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, so secrets can be read
// from configuration files.
func (s *String) UnmarshalText(b []byte) error {
	s.v = string(b)
	return nil
}
