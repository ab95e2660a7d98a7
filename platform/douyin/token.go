package douyin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/secret"
)

// FetchAccessToken gets the app's access token from api/apps/v2/token
// (docs/platforms/douyin.md, "Access tokens"). Douyin issues a new token
// for every fetch and cuts the previous one to 5 minutes of remaining
// life, so instances fetching independently shorten each other's tokens:
// fetch through one token manager (package accesstoken).
//
// The call only reads, so it is retried once after a failed dial or a busy
// answer. A wrong appid or secret is KindBadCredentials. Errors never carry
// the secret.
func (c *Client) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	body, err := json.Marshal(struct {
		AppID     string `json:"appid"`
		Secret    string `json:"secret"`
		GrantType string `json:"grant_type"`
	}{c.appID, c.secret.Reveal(), "client_credential"})
	if err != nil {
		return secret.String{}, 0, buildError(PathToken)
	}
	var (
		tok  secret.String
		life time.Duration
	)
	err = c.caller.Once(ctx, func(ctx context.Context) error {
		resp, err := c.post(ctx, c.base, PathToken, body, secret.String{})
		if err != nil {
			return err
		}
		tok, life, err = parseAccessToken(resp, c.secret.Reveal())
		return err
	})
	return tok, life, err
}

type tokenData struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   wire.Int `json:"expires_in"`
}

// parseAccessToken reads an answer of api/apps/v2/token. Douyin sends data
// on errors too, with an empty token; err_no decides. Success needs a
// non-empty access_token and a positive expires_in. The scrub values (the
// secret) are removed from Douyin's message.
func parseAccessToken(resp *hostcall.Response, scrub ...string) (secret.String, time.Duration, error) {
	env, err := decodeEnvelope(PathToken, resp)
	if err != nil {
		return secret.String{}, 0, err
	}
	if env.ErrNo != 0 {
		return secret.String{}, 0, apiError(PathToken, resp.Status, env, scrub...)
	}
	if resp.Status/100 != 2 {
		return secret.String{}, 0, hostcall.StatusError(host, PathToken, resp)
	}
	var d tokenData
	if err := decodeData(PathToken, resp.Status, env.Data, &d); err != nil {
		return secret.String{}, 0, err
	}
	return hostcall.CheckAccessToken(host, PathToken, resp.Status, d.AccessToken, d.ExpiresIn)
}
