package emulator_test

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
)

// freshClient has no idle connections to reuse: Go's Transport silently
// retries a GET that failed on a reused connection, which would hide a drop.
func freshClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestFaultLatencyTimesOutClient(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{Path: wxPath, LatencyMS: 60_000})
	code := v.login("wechat", "wxapp1", "alice")

	_, err := freshClient(100 * time.Millisecond).Get(v.srv.URL + wxPath + "?" + wxQuery("wxapp1", "s", code).Encode())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a client timeout", err)
	}
	// The platform never saw the code. (srv.Close waits for the handler,
	// which stops waiting when the client goes away.)
	v.emu.ClearFaults()
	wantWeChatSession(t, v.wxExchange(code))
}

func TestFaultLatencyDelaysRealAnswer(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{LatencyMS: 80}) // every path
	start := time.Now()
	wantWeChatSession(t, v.wxExchange(v.login("wechat", "wxapp1", "alice")))
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered after %v, want at least 80ms", d)
	}
}

func TestFaultDrop(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{Path: wxPath, Drop: true, Times: 1})
	code := v.login("wechat", "wxapp1", "alice")
	resp, err := freshClient(5 * time.Second).Get(v.srv.URL + wxPath + "?" + wxQuery("wxapp1", "s", code).Encode())
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response %s, want a connection error", resp.Status)
	}
	if runtime.GOOS != "windows" && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("got %v, want a connection reset", err)
	}
	wantWeChatSession(t, v.wxExchange(code)) // not consumed, and the rule is spent
}

func TestFaultTruncate(t *testing.T) {
	for _, app := range []exchanger{wechatApp(), baiduApp()} {
		t.Run(app.platform, func(t *testing.T) {
			v := newEnv(t, emulator.Config{})
			v.emu.SetFaults(emulator.Fault{Truncate: true, Times: 1})
			code := v.login(app.platform, app.appid, "alice")
			var resp *http.Response
			var err error
			if app.platform == "wechat" {
				resp, err = freshClient(5 * time.Second).Get(v.srv.URL + wxPath + "?" + wxQuery("wxapp1", "s", code).Encode())
			} else {
				resp, err = freshClient(5*time.Second).PostForm(v.srv.URL+bdPath, bdForm("bdkey1", "s", code))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength <= 0 {
				t.Errorf("Content-Length %d, want the full length declared", resp.ContentLength)
			}
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read %q, %v; want io.ErrUnexpectedEOF", body, err)
			}
			if len(body) == 0 || int64(len(body)) >= resp.ContentLength {
				t.Errorf("got %d of %d bytes, want a part", len(body), resp.ContentLength)
			}
			app.used(t, app.exchange(v, code)) // the platform did answer: the code is spent
		})
	}
}

func TestFaultSlowBody(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{Path: wxPath, SlowBodyMS: 60_000})
	code := v.login("wechat", "wxapp1", "alice")
	resp, err := freshClient(300 * time.Millisecond).Get(v.srv.URL + wxPath + "?" + wxQuery("wxapp1", "s", code).Encode())
	if err != nil {
		t.Fatalf("the headers should arrive: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %q, %v; want a timeout while reading the body", body, err)
	}
	if string(body) != "{" {
		t.Errorf("read %q before the stall, want the first byte", body)
	}
	v.emu.ClearFaults()
	wantWeChatError(t, v.wxExchange(code), 40163) // consumed: why retrying after a timeout is dangerous
}

func TestFaultAnswers(t *testing.T) {
	tests := []struct {
		name   string
		fault  emulator.Fault
		path   string // wxPath by default
		status int
		ctype  string
		check  func(t *testing.T, r result)
	}{
		{name: "empty", fault: emulator.Fault{Empty: true}, status: 200, ctype: "text/html; charset=gbk",
			check: func(t *testing.T, r result) {
				if len(r.body) != 0 {
					t.Errorf("body %q, want none", r.body)
				}
			}},
		{name: "garbage", fault: emulator.Fault{Garbage: true}, status: 200, ctype: "text/html",
			check: func(t *testing.T, r result) {
				if json.Valid(r.body) || len(r.body) == 0 {
					t.Errorf("body %q, want something that is not JSON", r.body)
				}
			}},
		{name: "garbage with status", fault: emulator.Fault{Garbage: true, Status: 502}, status: 502, ctype: "text/html"},
		{name: "status alone", fault: emulator.Fault{Status: 503}, status: 503, ctype: "text/plain; charset=utf-8",
			check: func(t *testing.T, r result) {
				if !strings.Contains(string(r.body), "Service Unavailable") {
					t.Errorf("body %q", r.body)
				}
			}},
		{name: "wechat system error", fault: emulator.Fault{Errcode: -1}, status: 200, ctype: "text/plain",
			check: func(t *testing.T, r result) {
				wantWeChatError(t, r, -1)
				if !strings.HasPrefix(r.str(t, "errmsg"), "system error, rid: ") {
					t.Errorf("errmsg %q", r.str(t, "errmsg"))
				}
			}},
		{name: "wechat quota", fault: emulator.Fault{Errcode: 45011}, status: 200, ctype: "text/plain",
			check: func(t *testing.T, r result) {
				wantWeChatError(t, r, 45011)
				if !strings.HasPrefix(r.str(t, "errmsg"), "api minute-quota reach limit mustslower retry next minute") {
					t.Errorf("errmsg %q", r.str(t, "errmsg"))
				}
			}},
		{name: "wechat errcode with status", fault: emulator.Fault{Errcode: -1, Status: 503}, status: 503, ctype: "text/plain",
			check: func(t *testing.T, r result) {
				if r.num(t, "errcode") != -1 {
					t.Errorf("body %s", r.body)
				}
			}},
		{name: "baidu string error on wechat path", fault: emulator.Fault{Error: "invalid_grant"}, status: 200, ctype: "text/plain",
			check: func(t *testing.T, r result) { wantWeChatError(t, r, -1) }},
		{name: "baidu errno", path: bdPath, fault: emulator.Fault{Errcode: 10010102}, status: 200, ctype: "application/json",
			check: func(t *testing.T, r result) { wantBaiduError(t, r, 10010102, "invalid_grant", "") }},
		{name: "baidu error string", path: bdPath, fault: emulator.Fault{Error: "invalid_client"}, status: 200, ctype: "application/json",
			check: func(t *testing.T, r result) { wantBaiduError(t, r, 10010101, "invalid_client", "unknown client id") }},
		{name: "baidu unknown error string", path: bdLegacy, fault: emulator.Fault{Error: "temporarily_unavailable", Status: 503},
			status: 503, ctype: "application/json",
			check: func(t *testing.T, r result) {
				if r.str(t, "error") != "temporarily_unavailable" {
					t.Errorf("body %s", r.body)
				}
			}},
		{name: "baidu gateway token error", path: bdTPPath, fault: emulator.Fault{Errcode: 111}, status: 200, ctype: "application/json",
			check: func(t *testing.T, r result) {
				if r.num(t, "error_code") != 111 || r.str(t, "error_msg") != "Access token expired" {
					t.Errorf("body %s", r.body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{})
			path := tt.path
			if path == "" {
				path = wxPath
			}
			f := tt.fault
			f.Path = path
			v.emu.SetFaults(f)

			var r result
			var code string
			switch path {
			case wxPath:
				code = v.login("wechat", "wxapp1", "alice")
				r = v.wxExchange(code)
			case bdTPPath:
				code = v.login("baidu", "bdkey1", "alice")
				r = v.get(path, url.Values{"access_token": {"t"}, "code": {code}, "grant_type": {"authorization_code"}})
			default:
				code = v.login("baidu", "bdkey1", "alice")
				r = v.postForm(path, bdForm("bdkey1", "s", code))
			}
			if r.status != tt.status || r.ctype != tt.ctype {
				t.Errorf("status %d, Content-Type %q; want %d %q", r.status, r.ctype, tt.status, tt.ctype)
			}
			if tt.check != nil {
				tt.check(t, r)
			}

			// A fault that answers for the platform leaves the code unspent.
			v.emu.ClearFaults()
			if path == wxPath {
				wantWeChatSession(t, v.wxExchange(code))
			} else {
				wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "s", code)))
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{Path: wxPath, Errcode: -1, Times: 2})
	code := v.login("wechat", "wxapp1", "alice")
	wantWeChatError(t, v.wxExchange(code), -1)
	wantWeChatError(t, v.wxExchange(code), -1)
	wantWeChatSession(t, v.wxExchange(code))
	if got := v.get("/_emulator/faults", nil); !strings.Contains(string(got.body), `"faults":[]`) {
		t.Errorf("a spent rule is still listed: %s", got.body)
	}
}

func TestFaultErrorRate(t *testing.T) {
	// A seeded source makes the draws, and so this test, deterministic.
	v := newEnv(t, emulator.Config{OpenCodes: true, Rand: rand.NewChaCha8([32]byte{1})})
	v.emu.SetFaults(emulator.Fault{Path: wxPath, Errcode: 45011, ErrorRate: 0.5})
	const n = 200
	faulted := 0
	for i := range n {
		r := v.wxExchange("u.rate" + string(rune('A'+i%26)) + string(rune('A'+i/26)))
		if _, isErr := r.json(t)["errcode"]; isErr {
			wantWeChatError(t, r, 45011)
			faulted++
		}
	}
	if faulted < n/4 || faulted > 3*n/4 {
		t.Errorf("%d of %d requests faulted at error_rate 0.5", faulted, n)
	}
}

func TestFaultPathAndCatchAll(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(
		emulator.Fault{Errcode: -1},                            // every path
		emulator.Fault{Path: wxPath, Errcode: 45011, Times: 1}, // tried first
	)
	code := v.login("wechat", "wxapp1", "alice")
	wantWeChatError(t, v.wxExchange(code), 45011)
	wantWeChatError(t, v.wxExchange(code), -1)
	wantBaiduError(t, v.postForm(bdPath, bdForm("k", "s", "c")), -1, "server_error", "")

	// Never the control API.
	if r := v.sendJSON("POST", "/_emulator/login", `{"platform":"wechat","appid":"wxapp1","user":"bob"}`); r.status != 200 {
		t.Errorf("control login under a catch-all fault: %d %s", r.status, r.body)
	}

	// A rule for the same path replaces the old one.
	v.emu.SetFaults(emulator.Fault{Errcode: 40029})
	wantWeChatError(t, v.wxExchange(code), 40029)

	// A latency-only catch-all adds its delay to the path's own rule.
	v.emu.ClearFaults()
	v.emu.SetFaults(emulator.Fault{LatencyMS: 80}, emulator.Fault{Path: wxPath, Errcode: 45011})
	start := time.Now()
	wantWeChatError(t, v.wxExchange(code), 45011)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered after %v, want the catch-all's 80ms too", d)
	}
}

func TestStats(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(emulator.Fault{Path: bdPath, Errcode: 10010100, Times: 1})
	v.wxExchange("x")
	v.wxExchange("y")
	v.postForm(bdPath, bdForm("k", "s", "c")) // answered by the fault
	v.postForm(bdPath, bdForm("k", "s", "c"))
	v.get("/nowhere", nil)
	v.login("wechat", "wxapp1", "alice")
	v.stable("wxapp1", "wxsecret1", false) // token fetches count like any platform call

	v.classic("wxapp1", "wxsecret1")
	v.get(bdTokenPath, bdTokenForm("k", "s"))
	v.postForm(bdTokenPath, bdTokenForm("k", "s"))
	v.get(wxCheckPath, nil)
	v.get(wxResetPath, nil)
	v.get(wxResetPath, nil)
	v.sendJSON("POST", wxPhonePath, `{"code":"x"}`)
	v.postForm(bdUnionPath, nil)
	v.get(bdTPUnionPath, nil)
	v.postForm(bdTPUnionPath, nil)
	v.postForm(bdSKPath, nil)
	v.sendJSON("POST", "/_emulator/phonecode", `{"appid":"wxapp1","user":"alice"}`) // control calls do not count

	want := map[string]int64{wxPath: 2, bdPath: 2, wxCompPath: 0, bdLegacy: 0, bdTPPath: 0,
		wxTokenPath: 1, wxStablePath: 1, bdTokenPath: 2,
		wxCheckPath: 1, wxResetPath: 2, wxPhonePath: 1, bdUnionPath: 1, bdTPUnionPath: 2, bdSKPath: 1}
	want[qqTokenPath] = 0
	want[ksPath], want[ksTokenPath] = 0, 0
	want[dyPath], want[dyTokenPath], want[dyPhonePath] = 0, 0, 0
	want[alipayGWPath] = 0
	got := v.emu.Stats()
	r := v.get("/_emulator/stats", nil)
	var wire struct {
		Calls map[string]int64 `json:"calls"`
	}
	if err := json.Unmarshal(r.body, &wire); err != nil || r.status != 200 {
		t.Fatalf("stats: %d %s: %v", r.status, r.body, err)
	}
	for path, n := range want {
		if got[path] != n || wire.Calls[path] != n {
			t.Errorf("%s: Stats %d, /_emulator/stats %d; want %d", path, got[path], wire.Calls[path], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Stats lists %v, want exactly the platform paths", got)
	}
}

func TestSetFaultsPanicsOnInvalidRule(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	defer func() {
		if recover() == nil {
			t.Error("SetFaults accepted a rule for an unknown path")
		}
	}()
	v.emu.SetFaults(emulator.Fault{Path: "/sns/nothing", Errcode: -1})
}

// TestFaultDropWithoutHijack: where the connection cannot be taken over
// (HTTP/2, a ResponseRecorder), drop and truncate abort the handler instead.
func TestFaultDropWithoutHijack(t *testing.T) {
	for _, f := range []emulator.Fault{{Drop: true}, {Truncate: true}} {
		emu := emulator.New(emulator.Config{})
		emu.SetFaults(f)
		func() {
			defer func() {
				if p := recover(); p != http.ErrAbortHandler {
					t.Errorf("%+v: recovered %v, want http.ErrAbortHandler", f, p)
				}
			}()
			emu.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", wxPath+"?appid=a&secret=s&js_code=c&grant_type=authorization_code", nil))
		}()
	}
}
