package baidu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Paths of the unionid lookups (docs/platforms/baidu.md, "Unionids"), both
// on the openapi host.
const (
	PathUnionID   = "/rest/2.0/smartapp/getunionid"
	PathTPUnionID = "/rest/2.0/smartapp/unionId/get"
)

// UnionID returns the user's unionid, the same for every smart program of
// the developer's entity (POST rest/2.0/smartapp/getunionid with the form
// field openid; docs/platforms/baidu.md, "Unionids"). accessToken is the
// app's own token (the "24." token of FetchAccessToken).
//
// A rejected token (gateway error_code 110 or 111) is KindTokenInvalid, so
// that the token manager refreshes it and calls again; a success answer
// without a unionid is KindUnknown. The call only reads: it is retried once
// after a failed dial. Errors never carry the token.
func (c *Client) UnionID(ctx context.Context, accessToken secret.String, openID string) (string, error) {
	if err := checkUnionIDArgs(PathUnionID, accessToken, openID); err != nil {
		return "", err
	}
	u := c.openAPI + PathUnionID + "?" + url.Values{"access_token": {accessToken.Reveal()}}.Encode()
	form := url.Values{"openid": {openID}}.Encode()
	return unionID(ctx, c.caller, PathUnionID, accessToken, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return req, err
	})
}

// UnionID returns the unionid of a user of the authorised smart program
// (GET rest/2.0/smartapp/unionId/get?open_id=…; docs/platforms/baidu.md,
// "Unionids"). accessToken is the program's authorizer token (the "45."
// token); unlike Exchange, this call takes it from the caller rather than
// from the TPConfig's source.
// Errors and retries are as for Client.UnionID.
func (c *TPClient) UnionID(ctx context.Context, accessToken secret.String, openID string) (string, error) {
	if err := checkUnionIDArgs(PathTPUnionID, accessToken, openID); err != nil {
		return "", err
	}
	u := c.base + PathTPUnionID + "?" + url.Values{"access_token": {accessToken.Reveal()}, "open_id": {openID}}.Encode()
	return unionID(ctx, c.caller, PathTPUnionID, accessToken, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	})
}

// maxOpenIDLen bounds an openid before any call is made.
const maxOpenIDLen = 512

func checkUnionIDArgs(path string, tok secret.String, openID string) error {
	what := ""
	switch {
	case tok.IsZero():
		what = "access token"
	case openID == "" || len(openID) > maxOpenIDLen:
		what = "openid"
	default:
		return nil
	}
	// A bug on our side, refused before any call: the kind Baidu gives a
	// missing parameter.
	return &platform.Error{Host: "baidu", Endpoint: path, Kind: platform.KindBadCredentials,
		Err: errors.New(what + " is empty or too long")}
}

func unionID(ctx context.Context, caller *hostcall.Caller, path string, tok secret.String, newReq func(context.Context) (*http.Request, error)) (string, error) {
	var out string
	err := caller.Once(ctx, func(ctx context.Context) error {
		req, err := newReq(ctx)
		if err != nil {
			// Its text may hold the URL, token included.
			return &platform.Error{Host: "baidu", Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
		}
		resp, err := caller.Send(ctx, req)
		if err != nil {
			return err
		}
		out, err = parseUnionID(path, resp, tok.Reveal())
		return err
	})
	return out, err
}

type unionIDResponse struct {
	envelope
	// Raw: on errors Baidu's envelopes may carry data of another shape
	// ([] or ""), which must not hide the error.
	Data json.RawMessage `json:"data"`
}

type unionIDData struct {
	UnionID  string `json:"unionid"`  // getunionid
	UnionID2 string `json:"union_id"` // unionId/get
}

// parseUnionID reads an answer of getunionid or unionId/get: the envelope
// {"errno","errmsg"/"msg","data":{…}} or a gateway error. Success needs no
// error field set, a 2xx status and a non-empty data.unionid (getunionid's
// spelling) or data.union_id (unionId/get's); either spelling is accepted on
// either path. The scrub values (the access token) are removed from the
// platform's message.
func parseUnionID(path string, resp *hostcall.Response, scrub ...string) (string, error) {
	var r unionIDResponse
	if err := hostcall.DecodeJSON("baidu", path, resp, &r); err != nil {
		return "", err
	}
	if r.failed() {
		return "", r.apiError(path, resp.Status, scrub...)
	}
	if resp.Status/100 != 2 {
		return "", hostcall.StatusError("baidu", path, resp)
	}
	var d unionIDData
	if len(r.Data) > 0 {
		if err := json.Unmarshal(r.Data, &d); err != nil {
			d = unionIDData{}
		}
	}
	id := firstOf(d.UnionID, d.UnionID2)
	if id == "" {
		return "", &platform.Error{Host: "baidu", Endpoint: path, Kind: platform.KindUnknown, Status: resp.Status,
			Err: errors.New("answer without unionid")}
	}
	return id, nil
}
