package emulator

import (
	"encoding/json"
	"io"
	"net/http"
)

// wechatTokenReply is a successful token fetch.
func wechatTokenReply(is tokenAnswer) reply {
	body, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}{is.token, is.expiresIn})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}

// wechatTokenCredentials checks what both token paths require, in the
// order of the login path: appid, secret, grant_type, then the app.
func (e *Emulator) wechatTokenCredentials(appid, secret, grantType string) (reply, bool) {
	switch {
	case appid == "":
		return e.wechatError(41002), false
	case secret == "":
		return e.wechatError(41004), false
	case grantType != "client_credential":
		return e.wechatError(40002), false
	}
	if a, known, checked := e.app(wechat, appid); checked {
		if !known {
			return e.wechatError(40013), false
		}
		if !secretOK(a.Secret, secret) {
			return e.wechatError(40125), false
		}
	}
	return reply{}, true
}

// wechatToken serves GET /cgi-bin/token
// (docs/platforms/wechat.md, "Access tokens").
func (e *Emulator) wechatToken(r *http.Request) reply {
	if r.Method != http.MethodGet {
		return e.wechatError(43001)
	}
	q := r.URL.Query()
	appid := q.Get("appid")
	if rep, ok := e.wechatTokenCredentials(appid, q.Get("secret"), q.Get("grant_type")); !ok {
		return rep
	}
	is, err := e.issueClassic(appid)
	if err != nil {
		return e.wechatError(-1)
	}
	e.log.Debug("emulator: access token issued", "path", "/cgi-bin/token", "appid", appid)
	return wechatTokenReply(is)
}

// wechatStableToken serves POST /cgi-bin/stable_token
// (docs/platforms/wechat.md, "Access tokens"); its normal and force modes
// are described at issueStable.
func (e *Emulator) wechatStableToken(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return e.wechatError(43002)
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	data, err := io.ReadAll(r.Body) // capped by ServeHTTP
	if err != nil || json.Unmarshal(data, &req) != nil {
		return e.wechatError(47001)
	}
	if rep, ok := e.wechatTokenCredentials(req.AppID, req.Secret, req.GrantType); !ok {
		return rep
	}
	is, forced, err := e.issueStable(req.AppID, req.ForceRefresh)
	if err != nil {
		return e.wechatError(-1)
	}
	if req.ForceRefresh {
		// Rare and operator-visible on the real platform too.
		e.log.Info("emulator: stable_token force_refresh", "appid", req.AppID, "refreshed", forced)
	}
	return wechatTokenReply(is)
}
