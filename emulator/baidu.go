package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

const baiduContentType = "application/json"

// Baidu's errno values. Only 10010100 is documented (docs/platforms/baidu.md,
// "Login code exchange"); the other two are the emulator's choice, next to it.
const (
	errnoParam  = 10010100
	errnoClient = 10010101
	errnoGrant  = 10010102
)

// What a refused code is told, on every Baidu exchange path: OAuth's
// descriptions of invalid_grant.
const (
	descBadCode  = "Invalid authorization code"
	descUsedCode = "The provided authorization grant is revoked"
)

// baiduError is an error in Baidu's OAuth shape. /oauth/2.0/token sends it
// with HTTP 400, as Baidu documents for its OAuth endpoints; the login
// exchanges send it with 200, because Baidu's own SDK reads errno, error
// and error_description only from a 2xx answer.
func baiduError(status, errno int, name, desc string) reply {
	body, _ := json.Marshal(struct {
		Errno int    `json:"errno,omitempty"`
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}{errno, name, desc})
	return reply{status: status, contentType: baiduContentType, body: body}
}

// The openapi gateway's error codes the emulator answers with, from Baidu's
// table of generic open API errors.
const (
	gatewayNoMethod     = 3   // no such API
	gatewayTokenInvalid = 110 // access token unknown or no longer valid
	gatewayTokenExpired = 111 // access token past its expiry
)

// baiduGateway is an answer of the openapi gateway itself, before any API
// sees the request, with HTTP 200.
func baiduGateway(code int) reply {
	var msg string
	switch code {
	case gatewayNoMethod:
		msg = "Unsupported openapi method"
	case gatewayTokenExpired:
		msg = "Access token expired"
	default:
		msg = "Access token invalid or no longer valid"
	}
	body, _ := json.Marshal(struct {
		Code int    `json:"error_code"`
		Msg  string `json:"error_msg"`
	}{code, msg})
	return reply{status: http.StatusOK, contentType: baiduContentType, body: body}
}

// baiduLoginError is an error of a login exchange: HTTP 200 (see baiduError).
func baiduLoginError(errno int, name, desc string) reply {
	return baiduError(http.StatusOK, errno, name, desc)
}

func baiduInvalidRequest(desc string) reply {
	return baiduLoginError(errnoParam, "invalid_request", desc)
}

// baiduForm parses the form body and the query string. Baidu's own SDKs send
// these calls both ways, so both are accepted. A malformed form is answered
// with errStatus, the path's status for its OAuth-style errors.
func baiduForm(r *http.Request, errStatus int) (reply, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return reply{status: http.StatusMethodNotAllowed, contentType: "text/plain; charset=utf-8",
			body: []byte("405 method not allowed\n")}, false
	}
	if err := r.ParseForm(); err != nil {
		return baiduError(errStatus, errnoParam, "parameter is invalid", "malformed form body"), false
	}
	return reply{}, true
}

// baiduCode2SessionKey serves POST /oauth/jscode2sessionkey (spapi) and the
// legacy POST /nalogin/getSessionKeyByCode
// (docs/platforms/baidu.md, "Login code exchange").
func (e *Emulator) baiduCode2SessionKey(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusOK); !ok {
		return rep
	}
	code, clientID, sk := r.Form.Get("code"), r.Form.Get("client_id"), r.Form.Get("sk")
	// Described like Baidu's validator does in the documented example.
	var missing []string
	for _, f := range [...]struct{ field, value string }{{"Code", code}, {"ClientID", clientID}, {"Sk", sk}} {
		if f.value == "" {
			missing = append(missing, fmt.Sprintf("Key: 'Code2SessionKeyParam.%s' Error:Field validation for '%s' failed on the 'required' tag", f.field, f.field))
		}
	}
	if len(missing) > 0 {
		return baiduLoginError(errnoParam, "parameter is invalid", strings.Join(missing, "\n"))
	}
	if a, known, checked := e.app(baidu, clientID); checked && (!known || !secretOK(a.Secret, sk)) {
		return baiduLoginError(errnoClient, "invalid_client", "unknown client id")
	}
	return e.baiduExchange(exchangeReq{platform: baidu, appid: clientID, code: code})
}

// baiduThirdPartySessionKey serves GET /rest/2.0/oauth/getsessionkeybycode,
// the third-party platform's exchange with an authorizer token
// (docs/platforms/baidu.md, "Third-party platform login").
func (e *Emulator) baiduThirdPartySessionKey(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusOK); !ok {
		return rep
	}
	token, code := r.Form.Get("access_token"), r.Form.Get("code")
	switch {
	case token == "":
		return baiduInvalidRequest("access_token is missing")
	case code == "":
		return baiduInvalidRequest("code is missing")
	case r.Form.Get("grant_type") != "authorization_code":
		return baiduLoginError(errnoParam, "unsupported_grant_type", "The authorization grant type is not supported")
	}
	return e.baiduExchange(exchangeReq{platform: baidu, code: code, byToken: true, token: token})
}

func (e *Emulator) baiduExchange(x exchangeReq) reply {
	g, oc := e.exchange(x)
	switch oc {
	case granted:
	case badCode:
		// Never echo the code: it may be someone's live credential.
		return baiduLoginError(errnoGrant, "invalid_grant", descBadCode)
	case usedCode:
		return baiduLoginError(errnoGrant, "invalid_grant", descUsedCode)
	case badToken:
		return baiduGateway(gatewayTokenInvalid)
	default:
		return baiduError(http.StatusInternalServerError, 0, "server_error", "internal error")
	}
	body, _ := json.Marshal(struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}{g.openid, g.sessionKey})
	return reply{status: http.StatusOK, contentType: baiduContentType, body: body}
}
