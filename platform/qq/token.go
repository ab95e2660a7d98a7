package qq

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/secret"
)

// PathToken is the access-token endpoint (docs/platforms/qq.md, "Access
// tokens").
const PathToken = "/api/getToken"

// FetchAccessToken gets the app's access token from api/getToken; it
// implements accesstoken.Fetcher.
//
// Every fetch makes QQ issue a new token and retire the previous one 5
// minutes later, so instances that fetch on their own invalidate each
// other's tokens: fetch in one place only (one accesstoken.Manager, or a
// central token service).
//
// The call only reads, so it is retried once after a failed dial or a busy
// answer. A wrong appid or secret is KindBadCredentials. Errors never carry
// the secret.
func (c *Client) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {c.appID}, "secret": {c.secret.Reveal()}}.Encode()
	var (
		tok  secret.String
		life time.Duration
	)
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathToken+"?"+q, nil)
		if err != nil {
			return buildError(PathToken)
		}
		resp, err := c.caller.Send(ctx, req)
		if err != nil {
			return err
		}
		tok, life, err = parseAccessToken(resp, c.secret.Reveal())
		return err
	})
	return tok, life, err
}

type tokenResponse struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   wire.Int `json:"expires_in"`
	ErrCode     wire.Int `json:"errcode"`
	ErrMsg      string   `json:"errmsg"`
}

// parseAccessToken reads an answer of api/getToken. Success needs a
// non-empty access_token and a positive expires_in. The scrub values (the
// secret) are removed from QQ's message.
func parseAccessToken(resp *hostcall.Response, scrub ...string) (secret.String, time.Duration, error) {
	var r tokenResponse
	if err := hostcall.DecodeJSON(host, PathToken, resp, &r); err != nil {
		return secret.String{}, 0, err
	}
	if r.ErrCode != 0 {
		return secret.String{}, 0, apiError(PathToken, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, scrub...))
	}
	if resp.Status/100 != 2 {
		return secret.String{}, 0, hostcall.StatusError(host, PathToken, resp)
	}
	return hostcall.CheckAccessToken(host, PathToken, resp.Status, r.AccessToken, r.ExpiresIn)
}
