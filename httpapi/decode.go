package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mplogin/mplogin"
)

// body is a request body's type: known says whether key is one of its JSON
// keys (its fields' tags), spelled exactly.
type body interface {
	known(key []byte) bool
}

// decode reads a strict JSON body into v: declared application/json, one
// object, each key known and given once, no trailing data, within the
// route's limit.
func decode(req *request, v body) error {
	if err := jsonContentType(req.r.Header); err != nil {
		return err
	}
	b, err := io.ReadAll(req.r.Body)
	if err != nil {
		return bodyError(err)
	}
	return decodeJSON(b, v)
}

// jsonContentType refuses a body not declared as JSON (in UTF-8, the only
// encoding JSON has), so that a form or a text is not read as JSON.
func jsonContentType(h http.Header) error {
	ct := h.Values("Content-Type")
	switch {
	case len(ct) > 1:
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "send one Content-Type header")
	case len(ct) == 1 && ct[0] == "application/json":
		return nil // what clients send; no parsing
	case len(ct) == 1:
		mt, params, err := mime.ParseMediaType(ct[0])
		cs, hasCharset := params["charset"]
		if err == nil && mt == "application/json" && (!hasCharset || strings.EqualFold(cs, "utf-8")) {
			return nil
		}
	}
	return mplogin.Errorf(mplogin.CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
}

// decodeJSON reads b, one JSON object, into v. Each key must be one of v's,
// spelled exactly, and come once: encoding/json alone takes "APP" for "app"
// and lets the last of two "app" win, where another parser of the same bytes
// (a proxy, a firewall, a log pipeline) may take the first. One pass over
// the bytes checks the keys; encoding/json then validates and decodes them,
// so the values are what it reads. The fields are strings: a nested object
// is the wrong type, whatever its keys.
func decodeJSON(b []byte, v body) error {
	if err := checkKeys(b, v); err != nil {
		if !json.Valid(b) {
			return syntaxError(b) // the better message
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, "field %q has the wrong type", typ.Field)
		}
		return syntaxError(b)
	}
	return nil
}

// checkKeys checks the keys of the object b holds. It reads valid JSON
// right; what it makes of invalid JSON does not matter, as long as it
// stops, since encoding/json refuses that afterwards.
func checkKeys(b []byte, v body) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return errNotObject
	}
	// The keys taken are distinct fields: no more than a body type has.
	var seenBuf [8][]byte
	seen := seenBuf[:0]
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		end := skipString(b, i)
		if b[i] != '"' || b[end-1] != '"' || end-i < 2 {
			return errNotObject
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return errNotObject
			}
			key = []byte(s)
		}
		if !v.known(key) {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, "unknown field %q", clip(key))
		}
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return mplogin.Errorf(mplogin.CodeInvalidRequest, "field %q is given twice", key)
			}
		}
		seen = append(seen, key)
		i = skipSpace(b, end) + 1 // the colon
		i = skipSpace(b, skipValue(b, skipSpace(b, i)))
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

var errNotObject = mplogin.Errorf(mplogin.CodeInvalidRequest, "the body must be a JSON object")

// syntaxError says what is wrong with b, which json.Valid refused.
func syntaxError(b []byte) error {
	if skipSpace(b, 0) == len(b) {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is empty; send a JSON object")
	}
	var first json.RawMessage
	if json.NewDecoder(bytes.NewReader(b)).Decode(&first) == nil {
		if first[0] != '{' {
			return errNotObject
		}
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body must hold one JSON object and nothing after it")
	}
	return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is not valid JSON")
}

// The skip functions walk JSON; each returns the index just past what it
// skips, never more than len(b).

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString skips the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte; the hex digits of \uXXXX hold no quote
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue skips the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	// A number, true, false or null.
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// clip shortens a client's key for an error message.
func clip(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}
