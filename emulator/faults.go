package emulator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Fault is one fault-injection rule for the platform paths (never for the
// control API). Set rules with SetFaults or PUT /_emulator/faults; a rule
// replaces any earlier rule with the same Path. See the package comment for
// how rules combine.
type Fault struct {
	Path       string  `json:"path,omitempty"`         // "" = every platform path
	LatencyMS  int     `json:"latency_ms,omitempty"`   // delay before answering
	ErrorRate  float64 `json:"error_rate,omitempty"`   // probability the rule fires; 0 = always
	Errcode    int     `json:"errcode,omitempty"`      // platform error: WeChat errcode, Baidu errno
	Error      string  `json:"error,omitempty"`        // Baidu error string
	Status     int     `json:"status,omitempty"`       // HTTP status of the answer
	Drop       bool    `json:"drop,omitempty"`         // reset the connection, no response
	SlowBodyMS int     `json:"slow_body_ms,omitempty"` // real answer, its body held back this long
	Truncate   bool    `json:"truncate,omitempty"`     // real answer, cut after half its body
	Empty      bool    `json:"empty,omitempty"`        // empty body
	Garbage    bool    `json:"garbage,omitempty"`      // an HTML error page instead of JSON
	Times      int     `json:"times,omitempty"`        // fire at most this often; 0 = unlimited
}

// hasAnswer reports whether the rule changes the answer, not only delays it.
func (f *Fault) hasAnswer() bool {
	return f.Errcode != 0 || f.Error != "" || f.Status != 0 || f.Drop || f.SlowBodyMS > 0 ||
		f.Truncate || f.Empty || f.Garbage
}

// replacesAnswer reports whether the rule answers instead of the platform,
// so that the code is not consumed. slow_body and truncate wrap a real answer.
func (f *Fault) replacesAnswer() bool {
	return f.hasAnswer() && f.SlowBodyMS == 0 && !f.Truncate
}

// checkFault validates a rule as PUT /_emulator/faults does.
func (e *Emulator) checkFault(f Fault) error {
	if f.Path != "" && e.routes[f.Path] == nil {
		return fmt.Errorf("path %q is not a platform path; use one of %q or omit it for all", f.Path, e.paths())
	}
	if f.LatencyMS < 0 || f.SlowBodyMS < 0 || f.Times < 0 {
		return errors.New("latency_ms, slow_body_ms and times must not be negative")
	}
	if !(f.ErrorRate >= 0 && f.ErrorRate <= 1) { // also catches NaN
		return errors.New("error_rate must be between 0 and 1")
	}
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		return errors.New("status must be between 200 and 599")
	}
	if f.LatencyMS == 0 && !f.hasAnswer() {
		return errors.New("the rule does nothing: set latency_ms, errcode, error, status, drop, slow_body_ms, truncate, empty or garbage")
	}
	n := 0
	for _, set := range [...]bool{f.Drop, f.SlowBodyMS > 0, f.Truncate, f.Empty, f.Garbage, f.Errcode != 0 || f.Error != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("choose one of drop, slow_body_ms, truncate, empty, garbage and errcode/error per rule")
	}
	if f.Status != 0 && (f.Drop || f.SlowBodyMS > 0 || f.Truncate) {
		return errors.New("status goes alone or with errcode, error, empty or garbage")
	}
	return nil
}

// faultState is a rule and how often it may still fire (0 = unlimited).
type faultState struct {
	rule Fault
	left int
}

// SetFaults adds rules; a rule with the same Path as an existing one replaces
// it. It panics on an invalid rule (one PUT /_emulator/faults would answer
// with 400): rules come from test code, where a panic is the quickest report.
func (e *Emulator) SetFaults(rules ...Fault) {
	if err := e.setFaults(rules); err != nil {
		panic("emulator: SetFaults: " + err.Error())
	}
}

// setFaults validates every rule before applying any.
func (e *Emulator) setFaults(rules []Fault) error {
	for i, f := range rules {
		if err := e.checkFault(f); err != nil {
			if len(rules) > 1 {
				return fmt.Errorf("rule %d: %w", i, err)
			}
			return err
		}
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	for _, f := range rules {
		e.faults[f.Path] = &faultState{rule: f, left: f.Times}
		e.log.Info("emulator: fault rule set", "path", f.Path, "latency_ms", f.LatencyMS, "error_rate", f.ErrorRate,
			"errcode", f.Errcode, "status", f.Status, "times", f.Times)
	}
	e.nFaults.Store(int32(len(e.faults)))
	return nil
}

// ClearFaults removes every rule.
func (e *Emulator) ClearFaults() {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	clear(e.faults)
	e.nFaults.Store(0)
}

// listFaults returns the rules in force, Times being what is left of them.
func (e *Emulator) listFaults() []Fault {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	out := make([]Fault, 0, len(e.faults))
	for _, st := range e.faults {
		f := st.rule
		f.Times = st.left
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// faultPlan is what the rules decided for one request.
type faultPlan struct {
	latency time.Duration
	fault   *Fault // the rule that shapes the answer; nil = the real answer
}

// planFaults decides, for one request, which rules fire. At most two rules
// match a path: its own, then the one for every path. Each fires with its
// error_rate and adds its latency; the first firing rule with an effect
// shapes the answer, and a second such rule is then not tried, so its
// times are not spent.
func (e *Emulator) planFaults(path string) faultPlan {
	var p faultPlan
	if e.nFaults.Load() == 0 {
		return p // the common case takes no lock
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	for _, key := range [...]string{path, ""} {
		st := e.faults[key]
		if st == nil || (p.fault != nil && st.rule.hasAnswer()) {
			continue
		}
		if r := st.rule.ErrorRate; r > 0 && r < 1 && e.randFloat() >= r {
			continue
		}
		p.latency += time.Duration(st.rule.LatencyMS) * time.Millisecond
		if st.rule.hasAnswer() {
			f := st.rule
			p.fault = &f
		}
		if st.left > 0 {
			if st.left--; st.left == 0 {
				delete(e.faults, key)
				e.nFaults.Store(int32(len(e.faults)))
			}
		}
	}
	return p
}

// writeFault answers in place of the platform.
func (e *Emulator) writeFault(w http.ResponseWriter, rt *route, f *Fault) {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case f.Drop:
		dropConn(w)
	case f.Empty:
		// What WeChat once sent for bad credentials
		// (docs/platforms/wechat.md, "Answers and errors").
		writeReply(w, reply{status: status, contentType: "text/html; charset=gbk"})
	case f.Garbage:
		writeReply(w, garbage(status))
	case f.Errcode != 0 || f.Error != "":
		rep := e.faultError(rt, f)
		if f.Status != 0 {
			rep.status = f.Status
		}
		writeReply(w, rep)
	default: // status alone
		writeReply(w, reply{status: status, contentType: "text/plain; charset=utf-8",
			body: []byte(strconv.Itoa(status) + " " + http.StatusText(status) + "\n")})
	}
}

// faultError is a platform error in the path's own format. On a WeChat path
// a rule with only a Baidu error string answers -1, system error; on a Baidu
// openapi business path (getunionid, unionId/get, getsessionkey) the errno
// goes into the path's envelope, 1 ("异常返回") when the rule gave only an
// error string; elsewhere on Baidu it is an OAuth-style error with the
// path's own status.
func (e *Emulator) faultError(rt *route, f *Fault) reply {
	if rt.platform == kuaishou {
		return kuaishouFault(f)
	}
	if rt.platform == alipay {
		return e.alipayFault(f)
	}
	if rt.platform == douyin {
		return e.douyinFaultError(rt, f)
	}
	if rt.platform == wechat {
		code := f.Errcode
		if code == 0 {
			code = -1
		}
		return e.wechatError(code)
	}
	if f.Errcode == gatewayTokenInvalid || f.Errcode == gatewayTokenExpired {
		return baiduGateway(f.Errcode)
	}
	if rt.envelope != noEnvelope {
		errno, msg := f.Errcode, f.Error
		if errno == 0 {
			errno = errnoUnionFailed
		}
		if msg == "" {
			msg = "emulated error"
		}
		return e.baiduEnvelope(rt.envelope, errno, msg, nil)
	}
	errno, name, desc := baiduFaultError(f.Errcode, f.Error)
	status := http.StatusOK
	if rt.oauth400 {
		status = http.StatusBadRequest
	}
	return baiduError(status, errno, name, desc)
}

// baiduFaultError completes a Baidu error from whichever of errno and error
// string the rule gave.
func baiduFaultError(errno int, name string) (int, string, string) {
	if name == "" {
		switch errno {
		case errnoParam:
			name = "parameter is invalid"
		case errnoClient:
			name = "invalid_client"
		case errnoGrant:
			name = "invalid_grant"
		default:
			name = "server_error"
		}
	}
	if errno == 0 {
		switch name {
		case "parameter is invalid", "invalid_request":
			errno = errnoParam
		case "invalid_client":
			errno = errnoClient
		case "invalid_grant":
			errno = errnoGrant
		}
	}
	// Descriptions from Baidu's OAuth error list
	// (docs/platforms/baidu.md, "Error codes").
	desc := name
	switch name {
	case "invalid_client":
		desc = "unknown client id"
	case "invalid_grant":
		desc = "The provided authorization grant is revoked"
	case "unauthorized_client":
		desc = "The client is not authorized to use this authorization grant type"
	case "unsupported_grant_type":
		desc = "The authorization grant type is not supported"
	case "invalid_scope":
		desc = "The requested scope is exceeds the scope granted by the resource owner"
	case "expired_token":
		desc = "refresh token has been used"
	case "server_error":
		desc = "emulated error"
	}
	return errno, name, desc
}

// garbage is an HTML error page of the kind a proxy in front of the
// platform serves.
func garbage(status int) reply {
	title := "502 Bad Gateway"
	if status != http.StatusOK {
		title = strconv.Itoa(status) + " " + http.StatusText(status)
	}
	body := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return reply{status: status, contentType: "text/html", body: []byte(body)}
}

// writeReply writes a complete answer.
func writeReply(w http.ResponseWriter, rep reply) {
	h := w.Header()
	h.Set("Content-Type", rep.contentType)
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// writeAnswer writes the platform's answer, slowly or cut short if the rule
// that fired says so.
func (e *Emulator) writeAnswer(w http.ResponseWriter, r *http.Request, rep reply, f *Fault) {
	if f == nil || (f.SlowBodyMS == 0 && !f.Truncate) {
		writeReply(w, rep)
		return
	}
	h := w.Header()
	h.Set("Content-Type", rep.contentType)
	h.Set("Content-Length", strconv.Itoa(len(rep.body))) // the full length, whatever follows
	w.WriteHeader(rep.status)
	rc := http.NewResponseController(w)
	if f.Truncate {
		_, _ = w.Write(rep.body[:len(rep.body)/2])
		if rc.Flush() == nil {
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	n := min(1, len(rep.body))
	_, _ = w.Write(rep.body[:n])
	_ = rc.Flush()
	if !sleepCtx(r.Context(), time.Duration(f.SlowBodyMS)*time.Millisecond) {
		return // the client gave up
	}
	_, _ = w.Write(rep.body[n:])
}

// dropConn closes the connection without a response. Linger 0 makes the
// close a reset, as a crashed peer or a middlebox would.
func dropConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // not hijackable (HTTP/2): aborting is the nearest thing
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}
