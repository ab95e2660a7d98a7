package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Paths of the access-token endpoints (docs/platforms/wechat.md, "Access tokens").
const (
	PathToken       = "/cgi-bin/token"
	PathStableToken = "/cgi-bin/stable_token"
)

// FetchAccessToken gets the app's access token from cgi-bin/stable_token in
// normal mode: WeChat hands every caller the same token while it is valid,
// so instances fetching at once cannot invalidate each other. It never asks
// for force_refresh, which would (docs/security.md, "Platform access
// tokens").
//
// The call only reads, so it is retried once after a failed dial or a busy
// answer. A wrong secret is KindBadCredentials (40001 here means the
// secret, not a token). Errors never carry the secret.
func (c *Client) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	body, err := json.Marshal(stableTokenRequest{GrantType: "client_credential", AppID: c.appID, Secret: c.secret.Reveal()})
	if err != nil {
		return secret.String{}, 0, buildError(PathStableToken)
	}
	return c.fetchToken(ctx, PathStableToken, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathStableToken, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
}

// FetchClassicAccessToken gets a token from the classic cgi-bin/token. Each
// call makes WeChat issue a new token and retire the previous one 5
// minutes later, so instances fetching independently invalidate each
// other's tokens: prefer FetchAccessToken, and use this only behind one
// central token service.
func (c *Client) FetchClassicAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {c.appID}, "secret": {c.secret.Reveal()}}.Encode()
	return c.fetchToken(ctx, PathToken, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathToken+"?"+q, nil)
	})
}

// stableTokenRequest is the JSON body of stable_token. ForceRefresh has no
// omitempty: the request says "normal mode" in so many words.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

func (c *Client) fetchToken(ctx context.Context, path string, newReq func(context.Context) (*http.Request, error)) (secret.String, time.Duration, error) {
	var (
		tok  secret.String
		life time.Duration
	)
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		req, err := newReq(ctx)
		if err != nil {
			return buildError(path) // its text may hold the URL, secret included
		}
		resp, err := c.caller.Send(ctx, req)
		if err != nil {
			return err
		}
		tok, life, err = parseAccessToken(path, resp, c.secret.Reveal())
		return err
	})
	return tok, life, err
}

func buildError(path string) *platform.Error {
	return &platform.Error{Host: "wechat", Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
}

type tokenResponse struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   wire.Int `json:"expires_in"`
	ErrCode     wire.Int `json:"errcode"`
	ErrMsg      string   `json:"errmsg"`
}

// parseAccessToken reads an answer of cgi-bin/token or cgi-bin/stable_token.
// Success needs a non-empty access_token and a positive expires_in. The
// scrub values (the secret) are removed from the platform's message. On a
// token fetch 40001 means a wrong secret: KindBadCredentials.
func parseAccessToken(path string, resp *hostcall.Response, scrub ...string) (secret.String, time.Duration, error) {
	var r tokenResponse
	if err := decode(path, resp, &r); err != nil {
		return secret.String{}, 0, err
	}
	if r.ErrCode != 0 {
		return secret.String{}, 0, apiError(path, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, scrub...), false)
	}
	if resp.Status/100 != 2 {
		return secret.String{}, 0, hostcall.StatusError("wechat", path, resp)
	}
	return hostcall.CheckAccessToken("wechat", path, resp.Status, r.AccessToken, r.ExpiresIn)
}
