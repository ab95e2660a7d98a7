// Package redact keeps the secrets of a connection URL (Redis, PostgreSQL)
// out of what is printed: errors that name the server, and log lines.
//
// Any query parameter may carry a secret: a password under a key the
// client library does not know (sentinel_password, a misspelt password) is
// still a password, and the library's own error may quote it. So URL masks
// every query value, not only the ones named like passwords, and Values
// lists every value for Scrub to remove from a message.
package redact

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask stands for a removed value.
const Mask = "xxxxx"

// URL returns raw with the password of its user information and the value
// of every query parameter replaced by Mask (a parameter without "=" is
// replaced whole), and without its fragment. It reads raw as text, as
// Values does, so that a URL too malformed to parse (what errors about a
// URL are often about) is masked the same way; anything without "://"
// comes back as "(unparsable)", since it could hold a secret anywhere.
func URL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return "(unparsable)"
	}
	userinfo, hostpath, query, hasQuery := split(rest)
	out := scheme + "://"
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		out += user + ":" + Mask + "@"
	} else if userinfo != "" {
		out += userinfo + "@"
	}
	out += hostpath
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok {
				params[i] = k + "=" + Mask
			} else if p != "" {
				params[i] = Mask
			}
		}
		out += "?" + strings.Join(params, "&")
	}
	return out
}

// split splits what follows "://" into the user information (before the
// last "@" ahead of the query: a password with a raw "/" in it is still
// user information), the rest up to the query, and the query; the
// fragment goes.
func split(rest string) (userinfo, hostpath, query string, hasQuery bool) {
	rest, _, _ = strings.Cut(rest, "#")
	hostpath, query, hasQuery = strings.Cut(rest, "?")
	if at := strings.LastIndex(hostpath, "@"); at >= 0 {
		userinfo, hostpath = hostpath[:at], hostpath[at+1:]
	}
	return userinfo, hostpath, query, hasQuery
}

// Values returns what Scrub must remove from a message about raw: its user
// information and password, every query value (and every parameter without
// "="), and its fragment, each as written and decoded. It reads raw as
// text, so that a URL too malformed to parse (the case its errors are
// about) still gives its secrets up.
func Values(raw string) []string {
	return values(raw, func(string) bool { return true })
}

// Passwords is Values restricted to the user information and the query
// values whose key names a password (password, sentinel_password,
// sslpassword, passwd…): the secrets an error about a connection, rather
// than about the URL's syntax, could carry. The other values stay, so that
// scrubbing a short one ("0", "10") does not garble addresses in the
// message.
func Passwords(raw string) []string {
	return values(raw, func(key string) bool {
		k, err := url.QueryUnescape(key)
		if err != nil {
			k = key
		}
		return strings.Contains(strings.ToLower(k), "pass")
	})
}

func values(raw string, keep func(key string) bool) []string {
	var vs []string
	add := func(v string) {
		for _, d := range []string{v, unescape(v, url.QueryUnescape), unescape(v, url.PathUnescape)} {
			if d != "" && !slices.Contains(vs, d) {
				vs = append(vs, d)
			}
		}
	}
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	if _, fragment, ok := strings.Cut(rest, "#"); ok {
		add(fragment)
	}
	userinfo, _, query, _ := split(rest)
	// A user name alone is no secret; with a password, the whole of it
	// goes, then the password wherever it appears alone.
	if _, pw, ok := strings.Cut(userinfo, ":"); ok {
		add(userinfo)
		add(pw)
	}
	for _, p := range strings.Split(query, "&") {
		if k, v, ok := strings.Cut(p, "="); !ok {
			add(p)
		} else if keep(k) {
			add(v)
		}
	}
	// Longest first, so that a secret containing another goes whole.
	slices.SortStableFunc(vs, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return vs
}

func unescape(s string, f func(string) (string, error)) string {
	if u, err := f(s); err == nil {
		return u
	}
	return ""
}

// Scrub returns msg with each of values replaced by Mask wherever it
// stands as a token of its own: not preceded or followed by a letter or a
// digit. A library quotes a value it rejects ("…", =…, : …), and the
// boundary keeps a short value ("m") from garbling the words around it
// ("number").
func Scrub(msg string, values []string) string {
	for _, v := range values {
		if v == "" {
			continue
		}
		var b strings.Builder
		rest := msg
		for {
			i := strings.Index(rest, v)
			if i < 0 {
				break
			}
			before, _ := utf8.DecodeLastRuneInString(rest[:i])
			after, _ := utf8.DecodeRuneInString(rest[i+len(v):])
			b.WriteString(rest[:i])
			if alnum(before) || alnum(after) {
				b.WriteString(v)
			} else {
				b.WriteString(Mask)
			}
			rest = rest[i+len(v):]
		}
		b.WriteString(rest)
		msg = b.String()
	}
	return msg
}

func alnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// Error returns err, or, when its message holds one of values, an error
// that reads as the scrubbed message and wraps err, so that errors.Is and
// errors.As still see the chain.
func Error(err error, values []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if s := Scrub(msg, values); s != msg {
		return &scrubbed{msg: s, err: err}
	}
	return err
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
