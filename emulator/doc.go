// Package emulator is a stand-in for the mini-program platforms' servers
// (WeChat, Baidu), for local development, demos and tests. One http.Handler
// serves every platform's own paths with the platform's own wire format, so
// a client pointed at it cannot tell it from the real thing, plus a control
// API under /_emulator/ that plays the mini program's side (wx.login) and
// injects faults. `mplogin emulate` serves it on a port; tests use it in
// process:
//
//	emu := emulator.New(emulator.Config{})
//	srv := httptest.NewServer(emu)
//	defer srv.Close()
//	code, _ := emu.Login("wechat", "wx0123456789abcdef", "alice", "")
//	// point the client under test at srv.URL and exchange code
//
// # Platform paths
//
//   - WeChat GET /sns/jscode2session and GET /sns/component/jscode2session
//     (third-party platform): errors are {"errcode":N,"errmsg":"…, rid: …"}
//     with HTTP 200, and every answer is Content-Type text/plain, as WeChat
//     does. Codes: 40029 invalid code (unknown, expired, another app's or
//     another platform's), 40163 code been used, 40226 blocked user, 40013
//     unknown appid, 40125 wrong secret, 41002/41004/41008 missing appid,
//     secret or code (41002 also for any method but GET), 40002 grant_type
//     not authorization_code; on the component path 41021 missing
//     component_access_token, 40001 wrong token, 61003 wrong component appid.
//     Success carries session_key, openid and always a unionid.
//   - Baidu POST /oauth/jscode2sessionkey and POST /nalogin/getSessionKeyByCode
//     (form body or query string, GET accepted too: code, client_id, sk), and GET
//     /rest/2.0/oauth/getsessionkeybycode (third party: access_token, code,
//     grant_type). Errors are HTTP 400 {"errno","error","error_description"}:
//     10010100 "parameter is invalid" for a missing parameter, 10010101
//     invalid_client for an unknown client_id or wrong sk, 10010102
//     invalid_grant for a bad, expired or used code; a wrong third-party
//     token gets the gateway's HTTP 200 {"error_code":110,…}.
//   - Access tokens: WeChat GET /cgi-bin/token and POST /cgi-bin/stable_token,
//     Baidu GET|POST /oauth/2.0/token; see "Access tokens" below.
//
// Any other path answers 404.
//
// # Access tokens
//
// Tokens follow the platforms' rules by Config.Now (wechat.md §4, baidu.md §5):
//
//   - GET /cgi-bin/token (grant_type=client_credential, appid, secret): every
//     fetch issues a new token for 7200 s; the previous one stays valid for 5
//     more minutes (never past its own expiry), the one before it not at all.
//   - POST /cgi-bin/stable_token, JSON {grant_type, appid, secret,
//     force_refresh}. Normal mode returns the current token while at least 5
//     minutes of it remain; in its last 5 minutes, or when there is none, a
//     new one is issued and the old one stays valid until its own expiry, so
//     every answer has expires_in >= 300. force_refresh=true issues a new
//     token and invalidates the previous ones at once, at most 20 times a day
//     (days in China time, UTC+8) and at least 30 s after the last forced
//     refresh. A forced call beyond those limits is answered exactly as normal
//     mode would answer it (the current token and its remaining expires_in, no
//     error) and is not counted. Classic and stable tokens are isolated.
//   - GET|POST /oauth/2.0/token (grant_type=client_credentials, client_id,
//     client_secret, scope=smartapp_snsapi_base): a new token for 2592000 s
//     ("24.<hex>.2592000.<time>.<random>") per fetch, with the documented
//     refresh_token, session_key and session_secret (accepted nowhere); the
//     previous token stays valid until its expiry, older ones do not.
//
// Errors: WeChat 41002/41004 for a missing appid or secret, 40002 for another
// grant_type, 40013 unknown appid, 40125 wrong secret, 43001/43002 for the
// wrong method, 47001 for a stable_token body that is not JSON; Baidu HTTP 400
// {"error","error_description"} with unsupported_grant_type, invalid_request
// (client_id or client_secret missing), invalid_scope (the emulator insists on
// smartapp_snsapi_base) or invalid_client.
//
// TokenValid reports whether the platform would accept a token now;
// ExpireTokens (or POST /_emulator/tokens/expire) makes every token of an app
// invalid at once, so that tests can see a client's reaction to a rejected
// token; the next stable_token call issues a new one.
//
// # Users and codes
//
// A code is minted for a simulated user of one app by POST /_emulator/login
// or Login. It is single use and lives 5 minutes (WeChat) or 10 (Baidu), by
// Config.Now. Exchanging it on another app or another platform's path gives
// "invalid code". Each exchange gives the user a fresh session key (base64 of
// 16 bytes for WeChat, 24 for Baidu), or the one given at login, which
// replaces the previous one. Users whose name starts with "blocked" get
// WeChat's 40226 "code blocked", and their code is not consumed.
//
// Openids are derived by hashing (platform, appid, user), unionids by
// hashing (platform, owner, user), so both are stable across restarts and
// the unionid is shared by the apps of one App.Owner (all apps share the
// default owner "").
//
// With Config.Apps set, only those apps and secrets are accepted (secrets are
// compared in constant time; an empty Secret accepts any); without it, any
// appid and secret are.
//
// With Config.OpenCodes (mplogin emulate --open-codes, for load tests), a
// code that was never minted is accepted once if it reads "<user>.<anything>":
// it belongs to simulated user <user> of whichever app exchanges it. On the
// Baidu third-party path, whose request names no app, that is the app whose
// ThirdPartyToken was presented, else the app "". Used codes are remembered
// only for their lifetime (open ones as a hash), so memory stays bounded;
// session keys are kept for at least the 262,144 users who logged in last.
//
// # Control API
//
// JSON in and out; bodies are limited to 64 KiB (413 beyond) and decoded
// strictly (an unknown field is a 400). Errors are {"error":…,"message":…}.
//
//	POST   /_emulator/login     {"platform":"wechat"|"baidu","appid":…,"user":…,"session_key":"<optional base64>"} → {"code":…}
//	PUT    /_emulator/faults    one Fault or an array of them → 204
//	DELETE /_emulator/faults    → 204, every rule removed
//	GET    /_emulator/faults    → {"faults":[…]}, the rules in force
//	GET    /_emulator/stats     → {"calls":{"/sns/jscode2session":N,…}}, every request to a platform path
//	POST   /_emulator/tokens/expire {"platform":"wechat"|"baidu","appid":…} → 204, ExpireTokens
//	POST   /_emulator/userdata, /_emulator/phonecode → 501 for now
//
// # Faults
//
// A Fault rule applies to one platform path, or to every one when Path is
// empty; never to the control API. A rule replaces an earlier rule with the
// same Path, so at most two rules match a request: the path's own, tried
// first, and the catch-all. A rule fires with probability ErrorRate (0 means
// always), at most Times times (0 means no limit). A firing rule adds its
// LatencyMS, measured in real time and cut short if the client goes away,
// and then shapes the answer: Errcode/Error give a platform error in the
// path's format (on a WeChat path -1 "system error" unless Errcode says
// otherwise), Status the HTTP status (alone: a short text body), Empty an
// empty body, Garbage an HTML page, Drop a connection reset. Once one rule
// has shaped the answer, the other is tried only if it merely adds latency.
// On a Baidu path, Errcode 110 or 111 gives the gateway's token error. A
// rule has one effect besides latency, Status aside (alone, or with
// Errcode/Error, Empty or Garbage); an invalid rule is refused with 400, or
// makes SetFaults panic.
// Those answers replace the platform's, so the code is not consumed. The
// exceptions are SlowBodyMS (headers and the first byte, the rest after
// that long) and Truncate (the full Content-Length, half the body, then the
// connection closes): they wrap the real answer, so the code is spent, which
// is why retrying a code exchange after a timeout is dangerous.
//
// Drop and Truncate hijack the connection; under HTTP/2 or a ResponseRecorder
// they panic with http.ErrAbortHandler instead, which net/http turns into an
// aborted stream.
package emulator
