package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/secret"
)

// Client is a business client: a backend or gateway that may introspect
// and revoke tokens with its id and secret.
type Client struct {
	ID     string
	Secret secret.String
}

// clientSet holds the clients' secrets only as MACs under a key of this
// process: a memory dump gives nothing to try a secret against elsewhere,
// and comparing MACs of equal length takes the same time whatever they
// hold.
type clientSet struct {
	key  []byte
	macs map[string][]byte
	// none is compared against when the id is unknown, so that an unknown
	// id costs what a known one does.
	none []byte
}

func newClientSet(clients []Client) clientSet {
	cs := clientSet{key: make([]byte, 32), macs: make(map[string][]byte, len(clients))}
	// crypto/rand.Read does not fail (it panics rather than return short).
	_, _ = rand.Read(cs.key)
	for _, c := range clients {
		cs.macs[c.ID] = cs.mac(c.Secret.Reveal())
	}
	cs.none = cs.mac("\x00no such client")
	return cs
}

func (cs clientSet) mac(s string) []byte {
	m := hmac.New(sha256.New, cs.key)
	_, _ = io.WriteString(m, s)
	return m.Sum(nil)
}

// check reports whether id and sec are a configured client's.
func (cs clientSet) check(id, sec string) bool {
	want, ok := cs.macs[id]
	if !ok {
		want = cs.none
	}
	return hmac.Equal(cs.mac(sec), want) && ok
}

var errInvalidClient = mplogin.Errorf(mplogin.CodeInvalidClient, "client authentication failed: unknown client, wrong secret or none given")

// credentials are a request's client credentials.
type credentials struct {
	id, secret string
	given      bool // a secret was sent, by either method
}

// clientCredentials reads a request's client credentials: HTTP Basic,
// whose id and secret are each form-urlencoded first (RFC 6749 section
// 2.3.1), or the form's client_id and client_secret. Sending both is
// refused: a client uses one method. Another Authorization scheme is no
// client credentials. A client_id without a secret is none either (a
// public client may name itself).
func clientCredentials(r *http.Request, form url.Values) (credentials, error) {
	var c credentials
	vs := r.Header.Values("Authorization")
	if len(vs) > 1 {
		return c, mplogin.Errorf(mplogin.CodeInvalidRequest, "send one Authorization header")
	}
	basic := false
	if len(vs) == 1 {
		var err error
		if c, basic, err = parseBasic(vs[0]); err != nil {
			return credentials{}, err
		}
	}
	id, sec := form.Get("client_id"), form.Get("client_secret")
	if basic {
		if form.Has("client_secret") || form.Has("client_id") && id != c.id {
			return credentials{}, mplogin.Errorf(mplogin.CodeInvalidRequest, "send client credentials one way: Basic or the form, not both")
		}
		return c, nil
	}
	if form.Has("client_secret") {
		return credentials{id: id, secret: sec, given: true}, nil
	}
	return credentials{id: id}, nil
}

// parseBasic reads an Authorization header: ok is false for another
// scheme; malformed Basic credentials are invalid_client.
func parseBasic(h string) (c credentials, ok bool, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "basic") {
		return credentials{}, false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return credentials{}, true, errInvalidClient
	}
	id, sec, found := strings.Cut(string(raw), ":")
	if !found {
		return credentials{}, true, errInvalidClient
	}
	if id, err = url.QueryUnescape(id); err != nil {
		return credentials{}, true, errInvalidClient
	}
	if sec, err = url.QueryUnescape(sec); err != nil {
		return credentials{}, true, errInvalidClient
	}
	return credentials{id: id, secret: sec, given: true}, true, nil
}

// formContentType accepts application/x-www-form-urlencoded, with no
// charset or utf-8.
func formContentType(h http.Header) error {
	const form = "application/x-www-form-urlencoded"
	ct := h.Values("Content-Type")
	switch {
	case len(ct) > 1:
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "send one Content-Type header")
	case len(ct) == 1:
		mt, params, err := mime.ParseMediaType(ct[0])
		cs, hasCharset := params["charset"]
		if err == nil && mt == form && (!hasCharset || strings.EqualFold(cs, "utf-8")) {
			return nil
		}
	}
	return mplogin.Errorf(mplogin.CodeUnsupportedMediaType, "send the body as Content-Type: %s", form)
}

// formParams are the parameters the form routes know; any other is
// ignored, as RFC 6749 asks of unknown parameters.
var formParams = []string{"token", "token_type_hint", "client_id", "client_secret"}

// readForm reads a form body: its type, its size, its syntax, and no known
// parameter twice (another parser of the same bytes may take the other
// one). The errors name parameters, never values.
func readForm(req *request) (url.Values, error) {
	if err := formContentType(req.r.Header); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(req.r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return parseForm(string(b))
}

func parseForm(body string) (url.Values, error) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is not a valid form")
	}
	for _, k := range formParams {
		if len(form[k]) > 1 {
			return nil, mplogin.Errorf(mplogin.CodeInvalidRequest, "parameter %q is given more than once", k)
		}
	}
	return form, nil
}
