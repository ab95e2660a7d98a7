package kuaishou

import (
	"context"
	"net/url"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/secret"
)

// PathToken is the access-token endpoint (docs/platforms/kuaishou.md,
// "Access tokens").
const PathToken = "/oauth2/access_token"

// FetchAccessToken gets the app's access token with client_credentials; it
// implements accesstoken.Fetcher. A token lives 48 hours, and a new fetch
// does not end the previous token, so instances may fetch on their own.
//
// The call only reads, so it is retried once after a failed dial. A wrong
// app_id or app_secret is KindBadCredentials. Errors never carry the secret.
func (c *Client) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	form := url.Values{"app_id": {c.appID}, "app_secret": {c.appSecret.Reveal()}, "grant_type": {"client_credentials"}}.Encode()
	var (
		tok  secret.String
		life time.Duration
	)
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		resp, err := c.post(ctx, PathToken, form)
		if err != nil {
			return err
		}
		tok, life, err = parseAccessToken(resp, c.appSecret.Reveal())
		return err
	})
	return tok, life, err
}

type tokenResponse struct {
	envelope
	AccessToken string   `json:"access_token"`
	ExpiresIn   wire.Int `json:"expires_in"`
}

// parseAccessToken reads an answer of oauth2/access_token. Success needs
// result 1, a non-empty access_token and a positive expires_in. The scrub
// values (the secret) are removed from Kuaishou's message.
func parseAccessToken(resp *hostcall.Response, scrub ...string) (secret.String, time.Duration, error) {
	var r tokenResponse
	if err := hostcall.DecodeJSON(host, PathToken, resp, &r); err != nil {
		return secret.String{}, 0, err
	}
	if err := r.check(PathToken, resp, false, scrub); err != nil {
		return secret.String{}, 0, err
	}
	return hostcall.CheckAccessToken(host, PathToken, resp.Status, r.AccessToken, r.ExpiresIn)
}
