package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// controlPrefix is where the control API lives: what the mini program's own
// side (wx.login, swan.login) and test harnesses do.
const controlPrefix = "/_emulator/"

const maxControlBody = 64 << 10

// controlError is a control API error: {"error":…,"message":…} with a 4xx.
type controlError struct {
	status  int
	code    string
	message string
	cause   error // a sentinel for Go callers (ErrNoSession), or nil
}

func (c *controlError) Error() string { return c.message }

func (c *controlError) Unwrap() error { return c.cause }

func invalidRequest(msg string) *controlError {
	return &controlError{status: http.StatusBadRequest, code: "invalid_request", message: msg}
}

func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case controlPrefix + "login":
		if allowMethod(w, r, http.MethodPost) {
			e.controlLogin(w, r)
		}
	case controlPrefix + "faults":
		switch r.Method {
		case http.MethodPut:
			e.controlPutFaults(w, r)
		case http.MethodDelete:
			e.ClearFaults()
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet: // not in the contract: shows what is in force
			writeJSON(w, http.StatusOK, struct {
				Faults []Fault `json:"faults"`
			}{e.listFaults()})
		default:
			allowMethod(w, r, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case controlPrefix + "stats":
		if allowMethod(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, struct {
				Calls map[string]int64 `json:"calls"`
			}{e.Stats()})
		}
	case controlPrefix + "tokens/expire":
		if allowMethod(w, r, http.MethodPost) {
			e.controlExpireTokens(w, r)
		}
	case controlPrefix + "userdata":
		if allowMethod(w, r, http.MethodPost) {
			e.controlUserData(w, r)
		}
	case controlPrefix + "phonecode":
		if allowMethod(w, r, http.MethodPost) {
			e.controlPhoneCode(w, r)
		}
	default:
		writeControlError(w, &controlError{status: http.StatusNotFound, code: "not_found",
			message: "no such control endpoint; see the emulator package documentation"})
	}
}

// controlLogin: POST /_emulator/login, the mini program's wx.login/swan.login.
func (e *Emulator) controlLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Platform   string `json:"platform"`
		AppID      string `json:"appid"`
		User       string `json:"user"`
		SessionKey string `json:"session_key"`
		Anonymous  bool   `json:"anonymous"` // Douyin: a user who is not logged in
	}
	if cerr := readJSON(w, r, &req); cerr != nil {
		writeControlError(w, cerr)
		return
	}
	if p, _ := normalizePlatform(req.Platform); p == douyin {
		e.controlLoginDouyin(w, req.AppID, req.User, req.SessionKey, req.Anonymous)
		return
	}
	if req.Anonymous {
		writeControlError(w, invalidRequest(`anonymous logins are Douyin's: platform must be "douyin"`))
		return
	}
	code, cerr := e.login(req.Platform, req.AppID, req.User, req.SessionKey)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Code string `json:"code"`
	}{code})
}

// controlExpireTokens: POST /_emulator/tokens/expire, ExpireTokens for one
// app, so that a test can see how its client copes with a token the
// platform no longer accepts.
func (e *Emulator) controlExpireTokens(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Platform string `json:"platform"`
		AppID    string `json:"appid"`
	}
	cerr := readJSON(w, r, &req)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	p, ok := normalizePlatform(req.Platform)
	switch {
	case !ok:
		cerr = invalidRequest(unknownPlatform)
	case p == alipay:
		cerr = invalidRequest("the emulator issues Alipay no access tokens to expire")
	case req.AppID == "":
		cerr = invalidRequest("appid is required")
	default:
		cerr = e.knownApp(p, req.AppID)
	}
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	e.ExpireTokens(p, req.AppID)
	w.WriteHeader(http.StatusNoContent)
}

// controlPutFaults: PUT /_emulator/faults with one rule or an array of them.
func (e *Emulator) controlPutFaults(w http.ResponseWriter, r *http.Request) {
	data, cerr := readBody(w, r)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	var rules []Fault
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		cerr = decodeStrict(data, &rules)
	} else {
		var f Fault
		cerr = decodeStrict(data, &f)
		rules = []Fault{f}
	}
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	if err := e.setFaults(rules); err != nil {
		writeControlError(w, invalidRequest(err.Error()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) *controlError {
	data, cerr := readBody(w, r)
	if cerr != nil {
		return cerr
	}
	return decodeStrict(data, v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *controlError) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &controlError{status: http.StatusRequestEntityTooLarge, code: "request_too_large",
				message: fmt.Sprintf("the body is over %d bytes", maxControlBody)}
		}
		return nil, invalidRequest("cannot read the body")
	}
	return data, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields, so a
// misspelt field is an error rather than a silently ignored setting.
func decodeStrict(data []byte, v any) *controlError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return invalidRequest("the body is empty; expected JSON")
		}
		return invalidRequest("malformed JSON: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidRequest("unexpected data after the JSON value")
	}
	return nil
}

// allowMethod answers 405 unless r uses one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	writeControlError(w, &controlError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		message: r.Method + " is not allowed here; use " + allow})
	return false
}

func writeControlError(w http.ResponseWriter, c *controlError) {
	writeJSON(w, c.status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{c.code, c.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only plain structs and maps go through here
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"cannot encode the answer"}`)
	}
	writeReply(w, reply{status: status, contentType: "application/json", body: append(body, '\n')})
}
