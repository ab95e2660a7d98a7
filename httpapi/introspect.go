package httpapi

import (
	"net/http"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/session"
)

// AuthzRoute labels the gateway check, /v1/authz and every path below it,
// whatever the method, in metrics and logs.
const AuthzRoute = "/v1/authz"

// introspection is the answer of POST /v1/introspect (RFC 7662): only
// "active" for a token that is not live.
type introspection struct {
	Active    bool   `json:"active"`
	TokenType string `json:"token_type,omitempty"`
	Sub       string `json:"sub,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Sid       string `json:"sid,omitempty"`
	App       string `json:"app,omitempty"`
	Platform  string `json:"platform,omitempty"`
	OpenID    string `json:"openid,omitempty"`
	UnionID   string `json:"unionid,omitempty"`
}

// tokenParam is the form's token: required, and a token_type_hint may
// come with it, which is not needed (the tokens' prefixes say their type)
// and so is not checked, as RFC 7009 allows.
func tokenParam(form map[string][]string) (string, error) {
	if v := form["token"]; len(v) == 1 && v[0] != "" {
		return v[0], nil
	}
	return "", mplogin.Errorf(mplogin.CodeInvalidRequest, `parameter "token" is required`)
}

// authClient checks a request's client credentials; required says
// whether it must have some. It names the client for the log.
func (h *Handler) authClient(req *request, c credentials, required bool) error {
	if !c.given {
		if required {
			return errInvalidClient
		}
		return nil
	}
	if !h.clients.check(c.id, c.secret) {
		return errInvalidClient
	}
	req.clientID = c.id
	return nil
}

// formToken reads a form route's body, authenticates its client (a client
// is required, or optional), and returns its token.
func (h *Handler) formToken(req *request, clientRequired bool) (string, error) {
	form, err := readForm(req)
	if err != nil {
		return "", err
	}
	c, err := clientCredentials(req.r, form)
	if err != nil {
		return "", err
	}
	if err := h.authClient(req, c, clientRequired); err != nil {
		return "", err
	}
	return tokenParam(form)
}

func (h *Handler) introspect(req *request) error {
	tok, err := h.formToken(req, true)
	if err != nil {
		return err
	}
	in, err := h.sessions.Introspect(req.r.Context(), tok)
	if err != nil {
		return err
	}
	out := introspection{Active: in.Active}
	if in.Active {
		req.app = in.App
		out = introspection{Active: true, TokenType: in.TokenType, Sub: in.User.ID, ClientID: in.App,
			Exp: in.ExpiresAt.Unix(), Iss: h.issuer, Sid: in.SessionID, App: in.App}
		if !in.IssuedAt.IsZero() {
			out.Iat = in.IssuedAt.Unix()
		}
		if in.TokenType == session.TypeAccessToken {
			out.Platform, out.OpenID, out.UnionID = string(in.Family), in.User.OpenID, in.User.UnionID
		}
	}
	writeJSON(req, http.StatusOK, out)
	return nil
}

func (h *Handler) revoke(req *request) error {
	// Without client credentials the token is its own proof: whoever
	// holds it may end its session, as a logout does.
	tok, err := h.formToken(req, false)
	if err != nil {
		return err
	}
	if err := h.sessions.Revoke(req.r.Context(), tok); err != nil {
		return err
	}
	req.w.Header().Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusOK)
	req.status = http.StatusOK
	return nil
}

// authz is the gateways' check of a request's access token: 200 with
// the user in headers, or 401. Every header is always set, empty when
// there is nothing to say, so that a gateway that copies them over the
// client's request replaces what a client forged.
func (h *Handler) authz(req *request) error {
	tok, err := bearer(req.r)
	if err != nil {
		return err
	}
	if tok == "" {
		req.w.Header().Set("WWW-Authenticate", `Bearer realm="mplogin"`)
		return mplogin.Errorf(mplogin.CodeInvalidToken, "send the access token as Authorization: Bearer")
	}
	in, err := h.sessions.IntrospectAccess(req.r.Context(), tok)
	if err != nil {
		return err
	}
	if !in.Active {
		return mplogin.Errorf(mplogin.CodeInvalidToken, "the access token is missing, malformed, expired or revoked")
	}
	req.app = in.App
	hd := req.w.Header()
	hd.Set("X-User-Id", in.User.ID)
	hd.Set("X-Openid", in.User.OpenID)
	hd.Set("X-Unionid", in.User.UnionID)
	hd.Set("X-Mplogin-App", in.App)
	hd.Set("X-Mplogin-Session", in.SessionID)
	hd.Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusOK)
	req.status = http.StatusOK
	return nil
}
