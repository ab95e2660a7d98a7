package baidu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// PathGetSessionKey is the code exchange with the app's own access token,
// on the openapi host.
const PathGetSessionKey = "/rest/2.0/smartapp/getsessionkey"

// exchangeByToken trades a code on getsessionkey: POST with the token and
// the code in the query and no body, as Baidu's SDKs send it; the secret is
// not sent. A rejected token (the gateway's error_code 110 or 111) is
// reported to the token source, so that the next login gets a new one; this
// login fails, as the code is never sent twice.
func (c *Client) exchangeByToken(ctx context.Context, code string) (*platform.Login, error) {
	if err := hostcall.CheckCode("baidu", PathGetSessionKey, code); err != nil {
		return nil, err
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, &platform.Error{Host: "baidu", Endpoint: PathGetSessionKey,
			Kind: platform.KindUnavailable, Err: fmt.Errorf("access token: %w", err)}
	}
	u := c.openAPI + PathGetSessionKey + "?" + url.Values{"access_token": {tok.Reveal()}, "code": {code}}.Encode()
	parse := func(resp *hostcall.Response) (*platform.Login, error) {
		return parseGetSessionKey(PathGetSessionKey, resp, code, tok.Reveal())
	}
	login, err := exchange(ctx, c.caller, PathGetSessionKey, parse, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	})
	if platform.KindOf(err) == platform.KindTokenInvalid {
		if inv, ok := c.tokens.(platform.TokenInvalidator); ok {
			inv.InvalidateToken(ctx, tok)
		}
	}
	return login, err
}

type getSessionKeyResponse struct {
	envelope
	// Raw: on errors Baidu's envelopes may carry data of another shape
	// ([] or ""), which must not hide the error.
	Data json.RawMessage `json:"data"`
}

type getSessionKeyData struct {
	OpenID     string `json:"open_id"` // what Baidu sends
	OpenID2    string `json:"openid"`  // the spelling of every other exchange, tolerated
	SessionKey string `json:"session_key"`
}

// parseGetSessionKey reads an answer of getsessionkey: the envelope
// {"errno":0,"errmsg":"succ","request_id":…,"data":{"open_id":…,
// "session_key":…}} (msg is read for errmsg, openid for open_id), or any of
// Baidu's error shapes (envelope), whatever the HTTP status. Success needs
// no error field set, a 2xx status, an openid and a session key that is
// base64 of SessionKeyLen bytes. A business errno that envelope.classify
// does not know is KindInvalidCode. The scrub values (the code, the token)
// are removed from the platform's message.
func parseGetSessionKey(path string, resp *hostcall.Response, scrub ...string) (*platform.Login, error) {
	var r getSessionKeyResponse
	if err := hostcall.DecodeJSON("baidu", path, resp, &r); err != nil {
		return nil, err
	}
	if r.failed() {
		pe := r.apiError(path, resp.Status, scrub...)
		// Past the gateway, whose error_code is about the token, the code
		// is all getsessionkey judges, and Baidu documents no errno for
		// refusing one: an errno classify does not know is taken as a
		// refused code. So bad codes count as the user's, and cannot open
		// the login breaker the way platform failures do.
		if pe.Kind == platform.KindUnknown && r.Error == "" && r.ErrorCode == 0 {
			pe.Kind = platform.KindInvalidCode
		}
		return nil, pe
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError("baidu", path, resp)
	}
	var d getSessionKeyData
	if len(r.Data) > 0 && json.Unmarshal(r.Data, &d) != nil {
		d = getSessionKeyData{} // CheckLogin refuses it
	}
	openID := firstOf(d.OpenID, d.OpenID2)
	if err := hostcall.CheckLogin("baidu", path, resp.Status, openID, d.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: openID, SessionKey: secret.New(d.SessionKey)}, nil
}
