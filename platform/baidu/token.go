package baidu

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// PathToken is the app access-token endpoint
// (docs/platforms/baidu.md, "Access tokens").
const PathToken = "/oauth/2.0/token"

// TokenScope is the scope of the app's own client_credentials token.
const TokenScope = "smartapp_snsapi_base"

// FetchAccessToken gets the app's own access token (the "24." token, about
// 30 days) with client_credentials, as a form POST so that the secret
// travels in the body rather than in a URL.
//
// The call only reads, so it is retried once after a failed dial. A wrong
// key or secret is KindBadCredentials. Errors never carry the secret.
func (c *Client) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.appKey},
		"client_secret": {c.appSecret.Reveal()},
		"scope":         {TokenScope},
	}.Encode()
	var (
		tok  secret.String
		life time.Duration
	)
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form))
		if err != nil {
			return &platform.Error{Host: "baidu", Endpoint: PathToken, Kind: platform.KindUnknown, Err: errors.New("building request")}
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.caller.Send(ctx, req)
		if err != nil {
			return err
		}
		tok, life, err = parseAccessToken(PathToken, resp, c.appSecret.Reveal())
		return err
	})
	return tok, life, err
}

type tokenResponse struct {
	envelope
	AccessToken string   `json:"access_token"`
	ExpiresIn   wire.Int `json:"expires_in"`
}

// parseAccessToken reads an answer of oauth/2.0/token. Success needs a
// non-empty access_token and a positive expires_in; errors come in any of
// Baidu's shapes (envelope), often with HTTP 400. The scrub values (the
// secret) are removed from the platform's message.
func parseAccessToken(path string, resp *hostcall.Response, scrub ...string) (secret.String, time.Duration, error) {
	var r tokenResponse
	if err := hostcall.DecodeJSON("baidu", path, resp, &r); err != nil {
		return secret.String{}, 0, err
	}
	if r.failed() {
		return secret.String{}, 0, r.apiError(path, resp.Status, scrub...)
	}
	if resp.Status/100 != 2 {
		return secret.String{}, 0, hostcall.StatusError("baidu", path, resp)
	}
	return hostcall.CheckAccessToken("baidu", path, resp.Status, r.AccessToken, r.ExpiresIn)
}
