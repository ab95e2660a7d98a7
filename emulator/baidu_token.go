package emulator

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// baiduToken serves GET|POST /oauth/2.0/token with client_credentials
// (docs/platforms/baidu.md, "Access tokens"). Its errors are OAuth's: HTTP
// 400 with error and error_description, no errno.
func (e *Emulator) baiduToken(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusBadRequest); !ok {
		return rep
	}
	f := r.Form
	clientID, clientSecret := f.Get("client_id"), f.Get("client_secret")
	switch {
	case f.Get("grant_type") != "client_credentials":
		return baiduError(http.StatusBadRequest, 0, "unsupported_grant_type", "The authorization grant type is not supported")
	case clientID == "" || clientSecret == "":
		return baiduError(http.StatusBadRequest, 0, "invalid_request", "client_id and client_secret are required")
	case !slices.Contains(strings.Fields(f.Get("scope")), "smartapp_snsapi_base"):
		// Baidu documents scope as required; the emulator insists on it.
		return baiduError(http.StatusBadRequest, 0, "invalid_scope", "The requested scope is exceeds the scope granted by the resource owner")
	}
	if a, known, checked := e.app(baidu, clientID); checked && (!known || !secretOK(a.Secret, clientSecret)) {
		return baiduError(http.StatusBadRequest, 0, "invalid_client", "unknown client id")
	}
	is, err := e.issueBaidu(clientID)
	var extra [48]byte
	if err == nil {
		err = e.readRand(extra[:])
	}
	if err != nil {
		return baiduError(http.StatusInternalServerError, 0, "server_error", "internal error")
	}
	e.log.Debug("emulator: access token issued", "path", "/oauth/2.0/token", "appid", clientID)
	// The documented extras: a refresh token nobody accepts, and the
	// deprecated session_key and session_secret.
	body, _ := json.Marshal(struct {
		AccessToken   string `json:"access_token"`
		ExpiresIn     int64  `json:"expires_in"`
		RefreshToken  string `json:"refresh_token"`
		Scope         string `json:"scope"`
		SessionKey    string `json:"session_key"`
		SessionSecret string `json:"session_secret"`
	}{is.token, is.expiresIn, "25." + hex.EncodeToString(extra[:16]), "smartapp_snsapi_base",
		hex.EncodeToString(extra[16:32]), hex.EncodeToString(extra[32:])})
	return reply{status: http.StatusOK, contentType: baiduContentType, body: body}
}
