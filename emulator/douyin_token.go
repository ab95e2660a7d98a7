package emulator

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// douyinTokenLife is how long a token from /api/apps/v2/token lives.
const douyinTokenLife = 7200 * time.Second

// douyinAppToken is the token series of POST /api/apps/v2/token. Its value
// stands well clear of the kinds listed in tokens.go.
const douyinAppToken tokenKind = 0x80

// douyinTokenData is the token answer's data, sent on errors too, empty.
type douyinTokenData struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// douyinTokenError is a token error, with data as Douyin sends it.
func (e *Emulator) douyinTokenError(errNo int) reply {
	return e.douyinReply(errNo, douyinMessage(errNo), douyinTokenData{})
}

// douyinToken serves POST /api/apps/v2/token
// (docs/platforms/douyin.md, "Access tokens").
func (e *Emulator) douyinToken(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return e.douyinTokenError(douyinParams)
	}
	var req struct {
		AppID     string `json:"appid"`
		Secret    string `json:"secret"`
		GrantType string `json:"grant_type"`
	}
	data, err := io.ReadAll(r.Body) // capped by ServeHTTP
	if err != nil || json.Unmarshal(data, &req) != nil || req.AppID == "" || req.Secret == "" {
		return e.douyinTokenError(douyinParams)
	}
	if req.GrantType != "client_credential" {
		return e.douyinTokenError(douyinBadGrantType)
	}
	if a, known, checked := e.app(douyin, req.AppID); checked {
		if !known {
			return e.douyinTokenError(douyinBadAppID)
		}
		if !secretOK(a.Secret, req.Secret) {
			return e.douyinTokenError(douyinBadSecret)
		}
	}
	is, err := e.issueDouyin(req.AppID)
	if err != nil {
		return e.douyinTokenError(douyinBusy)
	}
	e.log.Debug("emulator: access token issued", "path", douyinPathToken, "appid", req.AppID)
	return e.douyinReply(0, douyinMessage(0), douyinTokenData{is.token, is.expiresIn})
}

// issueDouyin serves a token fetch: always a new token; the previous one
// is cut to 5 minutes of remaining life (never past its own expiry), the
// one before it stops at once.
func (e *Emulator) issueDouyin(appid string) (tokenAnswer, error) {
	var b [40]byte
	if err := e.readRand(b[:]); err != nil {
		return tokenAnswer{}, err
	}
	// Douyin's tokens are hex and start with 0801121.
	tok := "0801121" + hex.EncodeToString(b[:])
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	e.tokens.rotateLocked(tokenSlot{douyinAppToken, appid}, tok, now, douyinTokenLife, tokenOverlap)
	return answer(tok, douyinTokenLife), nil
}
