// Package emulator is a stand-in for the mini-program platforms' servers
// (WeChat, Baidu, QQ, Kuaishou, Douyin, Alipay), for local development,
// demos and tests. One http.Handler
// serves every platform's own paths with the platform's own wire format, so
// a client pointed at it cannot tell it from the real thing, plus a control
// API under /_emulator/ that plays the mini program's side (wx.login,
// getUserInfo, getPhoneNumber) and injects faults. `mplogin emulate` serves it on a port; tests use it in
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
//     grant_type). Errors are {"errno","error","error_description"} with HTTP
//     200, since Baidu's own SDK reads them only from a 2xx answer:
//     10010100 "parameter is invalid" for a missing parameter, 10010101
//     invalid_client for an unknown client_id or wrong sk, 10010102
//     invalid_grant for a bad, expired or used code; a wrong third-party
//     token gets the gateway's HTTP 200 {"error_code":110,…}.
//   - Baidu GET|POST /rest/2.0/smartapp/getsessionkey?access_token=…&code=…
//     (form fields accepted too): the code exchange with the app's own
//     access token from /oauth/2.0/token instead of its secret; see
//     "Business APIs" below.
//   - Access tokens: WeChat GET /cgi-bin/token and POST /cgi-bin/stable_token,
//     Baidu GET|POST /oauth/2.0/token; see "Access tokens" below.
//   - WeChat business APIs, authenticated by a classic or stable access token
//     (which names the app): GET /wxa/checksession and GET
//     /wxa/resetusersessionkey (access_token, openid, signature,
//     sig_method=hmac_sha256) and POST
//     /wxa/business/getuserphonenumber?access_token=… with {"code":…} and
//     an optional "openid"; see "Business APIs" below.
//   - QQ GET /sns/jscode2session, WeChat's path, and GET /api/getToken, both
//     in WeChat's format (docs/platforms/qq.md). One address serves both
//     hosts' jscode2session, told apart by appid: an appid configured as a
//     QQ app's (App.Family "qq") is QQ's, one configured as a WeChat app's is
//     WeChat's, and any other is QQ's when it is all digits, as QQ's appids
//     are. QQ's exchange answers as WeChat's, with QQ's users and codes
//     (40029 for a WeChat code) and a unionid every time; no user is
//     blocked. getToken: 40002 for another grant_type, 40013 for a missing
//     or unknown appid, 40001 for a missing or wrong secret, 43001 for a
//     method other than GET.
//   - Kuaishou POST /oauth2/mp/code2session (app_id, app_secret, js_code)
//     and GET|POST /oauth2/access_token (app_id, app_secret,
//     grant_type=client_credentials), the parameters from a form body or
//     the query string alike (docs/platforms/kuaishou.md). Success carries
//     "result":1; errors are {"result":N,"error_msg":…} with HTTP 200:
//     100200100 for a missing parameter, another grant_type or a method
//     other than POST (GET too for the token), 100200101 for an unknown
//     app_id or a wrong app_secret, 100200102 for a code that is unknown,
//     expired, another app's or another platform's, or used. The exchange
//     answers {"result":1,"session_key":…,"open_id":…}, never a unionid.
//   - Baidu unionid APIs: POST /rest/2.0/smartapp/getunionid?access_token=…
//     with the form field openid (GET with the query accepted too; the app's
//     own token from /oauth/2.0/token),
//     and GET|POST /rest/2.0/smartapp/unionId/get?access_token=…&open_id=…
//     (openid accepted too; a third-party platform's authorizer token, the
//     one /rest/2.0/oauth/getsessionkeybycode accepts); see "Business APIs"
//     below.
//
// Any other path answers in the error shape of the platform it looks like,
// with HTTP 200 as that platform sends such errors: under /oauth/, /nalogin/
// and /rest/ the Baidu openapi gateway's {"error_code":3,"error_msg":
// "Unsupported openapi method"}, anywhere else WeChat's 40066 "invalid
// url". Under /_emulator/ it is the control API's 404 not_found.
//
// # Access tokens
//
// Tokens follow the platforms' rules by Config.Now (docs/platforms/wechat.md
// and docs/platforms/baidu.md, "Access tokens"):
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
//   - QQ GET /api/getToken: as /cgi-bin/token, a new token for 7200 s per
//     fetch, the previous one valid 5 more minutes. QQ's tokens are not
//     WeChat's: WeChat's business APIs refuse them.
//   - Kuaishou GET|POST /oauth2/access_token: a new token for 172800 s (48
//     hours) per fetch, {"result":1,"access_token","expires_in",
//     "token_type":"bearer"}; the previous token stays valid until its own
//     expiry, older ones do not.
//   - GET|POST /oauth/2.0/token (grant_type=client_credentials, client_id,
//     client_secret, scope=smartapp_snsapi_base): a new token for 2592000 s
//     ("24.<hex>.2592000.<time>.<random>") per fetch, with the documented
//     refresh_token, session_key and session_secret (accepted nowhere); the
//     previous token stays valid until its expiry, older ones do not.
//
// Errors: WeChat 41002/41004 for a missing appid or secret, 40002 for another
// grant_type, 40013 unknown appid, 40125 wrong secret, 43001/43002 for the
// wrong method, 47001 for a stable_token body that is not JSON; Baidu HTTP 400
// (OAuth's status, kept here, unlike on the login exchanges)
// {"error","error_description"} with unsupported_grant_type, invalid_request
// (client_id or client_secret missing), invalid_scope (the emulator insists on
// smartapp_snsapi_base) or invalid_client.
//
// TokenValid reports whether the platform would accept a token now;
// ExpireTokens (or POST /_emulator/tokens/expire) makes every token of an app
// invalid at once, so that tests can see a client's reaction to a rejected
// token; the next stable_token call issues a new one.
//
// # Business APIs
//
// Every business API first checks access_token. WeChat: 41001 missing, 40001
// unknown, of another platform, replaced by a newer fetch (after the
// overlap) or expired with ExpireTokens, 42001 past its own 7200 s; Baidu:
// the gateway's HTTP 200 {"error_code":110,…} for a missing or unknown token
// (on unionId/get: one no app accepts), 111 for one past its expiry
// (docs/platforms/wechat.md and docs/platforms/baidu.md, "Access tokens").
// The business APIs know a user by openid only once the user has exchanged
// a code for that app (the openid is a hash), and only while the emulator
// remembers the user's session key. Their wire formats are those of
// docs/platforms/wechat.md, "Checking a session key",
// "Resetting a session key" and "Phone numbers", and of
// docs/platforms/baidu.md, "Unionids" and
// "Login with the app's access token".
//
//   - checksession: 43001 for a method other than GET, 41009 "missing
//     openid", 87009 "invalid signature" for a signature missing or wrong or
//     a sig_method other than hmac_sha256, 40003 "invalid openid" for an
//     openid the token's app did not give out (or whose user never logged
//     in). The signature is the lowercase hex HMAC-SHA256 keyed with the
//     user's current session_key string itself (not its base64 decoding)
//     over the empty string
//     (docs/platforms/wechat.md, "Session-key signature"); a key replaced by
//     a newer login or reset no longer signs. Success:
//     {"errcode":0,"errmsg":"ok"}.
//   - resetusersessionkey: the same checks with the current key; success
//     gives the user a new random session key at once and answers
//     {"errcode":0,"errmsg":"ok","openid":…,"session_key":…}. Of
//     concurrent resets signed with one key, one wins; the others get 87009.
//     No key expiry or reset quota is modelled (faults can give 45011).
//   - getuserphonenumber: 43002 for a method other than POST, 47001 for a
//     body that is not JSON, 41008 for no code, 40029 "invalid code" for a
//     phone code that is unknown, used, expired (5 minutes), another app's
//     or a login code; with an "openid" that is not the code's user's,
//     40003 "invalid openid" (WeChat checks it but documents no errcode),
//     and the code is not spent. Success:
//     {"errcode":0,"errmsg":"ok","phone_info":
//     {"phoneNumber","purePhoneNumber","countryCode":"86","watermark":
//     {"timestamp","appid"}}}, countryCode a string as WeChat's field table
//     declares it and real answers carry it, the watermark the token's app
//     and Config.Now.
//   - getunionid: {"errno":0,"errmsg":"succ","request_id":…,"timestamp":…,
//     "data":{"unionid":…}}; errno 1 (the only documented error) with no
//     data for a missing openid or one the token's app did not give out.
//   - unionId/get: {"errno":0,"msg":"success","data":{"union_id":…}}; errno
//     40001 (Baidu's third-party "parameter error") for a missing or unknown
//     open_id, or one of an app the token is not for.
//   - getsessionkey: {"errno":0,"errmsg":"succ","request_id":…,"data":
//     {"open_id":…,"session_key":…}}, open_id with an underscore; the code
//     must be one of the token's app, and is spent as on the other exchange
//     paths. Baidu documents no errno for a refused code, so the emulator
//     answers those of its spapi errors, errmsg being their description:
//     10010100 for a missing code, 10010102 "Invalid authorization code"
//     (unknown, expired, another app's) or "The provided authorization grant
//     is revoked" (used). A refused token does not spend the code.
//
// All business errors are HTTP 200, WeChat's text/plain with a ", rid: …"
// suffix on errmsg, as for the login paths. The unionids are those of
// UnionID: the same for every app of one App.Owner.
//
// # Users and codes
//
// A code is minted for a simulated user of one app by POST /_emulator/login
// or Login. It is single use and lives 5 minutes (WeChat, QQ, Kuaishou) or 10 (Baidu), by
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
// A phone code (POST /_emulator/phonecode or PhoneCode, WeChat only) stands
// for the getPhoneNumber button's code: for one user of one app, single use,
// 5 minutes, accepted only by getuserphonenumber with a token of that app;
// the user need not have logged in. Every simulated user has one phone
// number, PhoneNumber: 11 digits, "1", a digit 3-9 and nine more, all taken
// from SHA-256 of the user's name alone, so it is the same in every app, on
// both platforms and across restarts; the country code is 86. The profile in
// user data is derived from the name as well: the nickname is the name
// itself; gender (1 or 2), city and province (one of a few Chinese cities),
// and the avatar URL come from a hash of it; country "CN", language "zh_CN".
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
// session keys are kept for at least the 262,144 users who logged in last
// (per platform and openid; a reset does not add a user). Phone codes live
// with the login codes, for their lifetime.
//
// # Control API
//
// JSON in and out; bodies are limited to 64 KiB (413 beyond) and decoded
// strictly (an unknown field is a 400). Errors are {"error":…,"message":…}.
//
//	POST   /_emulator/login     {"platform":"wechat"|"baidu"|"qq"|"kuaishou"|"alipay","appid":…,"user":…,"session_key":"<optional base64>"} → {"code":…}
//	PUT    /_emulator/faults    one Fault or an array of them → 204
//	DELETE /_emulator/faults    → 204, every rule removed
//	GET    /_emulator/faults    → {"faults":[…]}, the rules in force
//	GET    /_emulator/stats     → {"calls":{"/sns/jscode2session":N,…}}, every request to a platform path
//	POST   /_emulator/tokens/expire {"platform":"wechat"|"baidu"|"qq"|"kuaishou","appid":…} → 204, ExpireTokens
//	POST   /_emulator/userdata  {"platform":…,"appid":…,"user":…,"kind":"userinfo"|"phone"} → {"encrypted_data","iv","raw_data","signature"}, UserData
//	POST   /_emulator/phonecode {"appid":…,"user":…} ("platform":"wechat" optional) → {"code":…}, PhoneCode
//
// The user data is encrypted with the session key the user holds now for
// the app (UserData, SessionKey), with a fresh iv from Config.Rand; a user
// who holds none (never exchanged a code there) gets 409 {"error":
// "no_session"}, and UserData an error wrapping ErrNoSession. It goes through
// package userdata's encryptors, so userdata.DecryptWeChat and DecryptBaidu
// read it back:
//
//   - WeChat (docs/platforms/wechat.md, "Decrypting user data"): AES-128-CBC,
//     PKCS#7. userinfo is {"openId","nickName","gender","language","city",
//     "province","country","avatarUrl","unionId","watermark":{"timestamp",
//     "appid"}}, the timestamp Config.Now; raw_data is the public part
//     {"nickName","gender","language","city","province","country",
//     "avatarUrl"} and signature is hex sha1(raw_data + session_key) (same
//     file, "rawData signature"). phone is {"phoneNumber","purePhoneNumber",
//     "countryCode":"86","watermark"} (countryCode a string, as in
//     getuserphonenumber), with no raw_data or signature.
//   - QQ: exactly WeChat's, with QQ's openId and unionId and a QQ avatar URL.
//     QQ has no phone number: kind "phone" is a 400 invalid_request.
//   - Kuaishou (docs/platforms/kuaishou.md, "Decrypting user data"):
//     AES-128-CBC, PKCS#7, no watermark. userinfo is {"gender","avatarUrl",
//     "nickName","openId"} (gender a number), raw_data {"nickName",
//     "avatarUrl"} and signature hex sha1(raw_data + session_key); phone is
//     {"phoneNumber","purePhoneNumber","countryCode":"86"}.
//   - Baidu (docs/platforms/baidu.md, "Decrypting user data"): AES-192-CBC
//     with 16 random bytes, a 4-byte big-endian length, the JSON and the app
//     key, PKCS#7 to 32 bytes.
//     userinfo is {"openid","nickname","headimgurl","sex"} (sex a number, as
//     in the official vector), phone is {"mobile":…}; never raw_data or
//     signature, as Baidu has none.
//
// # Douyin
//
// Douyin's paths (docs/platforms/douyin.md) answer JSON with HTTP 200, an
// integer err_no, a message and a log_id ("20060102150405" in China time
// and 20 hex digits):
//
//   - POST /api/apps/v2/jscode2session, JSON {appid, secret, code,
//     anonymous_code}, at least one code: {"err_no":0,"err_tips":"success",
//     "log_id":…,"data":{"session_key","openid","anonymous_openid","unionid",
//     "dopenid"}}, every key present, "" where it does not apply (dopenid
//     always). A code gives openid and unionid, an anonymous code
//     anonymous_openid; both give both. Errors carry no data: 40014 for a
//     missing appid, secret or code, a body that is not JSON or a method
//     other than POST; 40015 unknown appid; 40017 wrong secret; 40018 "bad
//     code" for a code that is unknown, used, expired (5 minutes), another
//     app's or an anonymous one; 40019 for such an anonymous code. A request
//     one of whose codes is refused spends neither.
//   - POST /api/apps/v2/token, JSON {appid, secret, grant_type}: a new token
//     ("0801121" and hex) for 7200 s per fetch; the previous one is cut to 5
//     minutes of remaining life (never past its own expiry), the one before
//     it stops at once. data is there on errors too, {"access_token":"",
//     "expires_in":0}: 40014, 40015, 40017 as above, 40020 for a grant_type
//     other than client_credential.
//   - POST /api/apps/v1/get_phonenumber_info/ with the header access-token
//     (a token of /api/apps/v2/token) and {"code"}: {"err_no":0,"err_msg":"",
//     "log_id":…,"data":"<base64>"}, data the JSON {"phoneNumber",
//     "purePhoneNumber","countryCode":"86","watermark":{"appid","timestamp"}}
//     encrypted with the app's App.RSAPublicKey, PKCS #1 v1.5, in as many
//     blocks as the key's size needs. Errors have data "": 28001003 for a
//     missing or unknown token, 28001008 for an expired one, 28005187 for a
//     phone code that is unknown, used, expired, another app's or not a
//     phone code of Douyin's, 28001007 for a request without a code or an
//     app without a public key. A refused request does not spend the code.
//
// POST /_emulator/login with "platform":"douyin" (or LoginDouyin) plays
// tt.login: a logged-in user gets {"code","anonymous_code"}; with
// "anonymous":true, only {"anonymous_code","anonymous":true}. Anonymous
// openids are stable per app and user, and differ from openids
// (AnonymousOpenID). POST /_emulator/phonecode with "platform":"douyin" (or
// DouyinPhoneCode) mints a phone code for get_phonenumber_info. User data
// is encrypted as WeChat's, AES-128-CBC under the user's session key, with
// raw_data and signature for user info; userinfo is {"openId","nickName",
// "avatarUrl","gender","city","province","country","language","unionId"}
// with no watermark (Douyin documents none), phone has the watermark
// {"appid","timestamp"}. A fault's Errcode (-1 by default) and Error become
// err_no and the message in the path's own shape.
//
// # Alipay
//
// GET|POST /gateway.do stands in for Alipay's classic gateway for
// alipay.system.oauth.token, the parameters from the form body, the query
// string or both (the body's value first when one is in both). The request
// must be signed: the string to sign is every parameter but sign, those
// with an empty value left out, sorted by name (byte order), "name=value"
// joined with "&", values not URL-encoded, sign_type included; sign is its
// base64 SHA256withRSA (PKCS #1 v1.5) signature, verified with the app's
// App.AlipayPublicKey; sign_type must be RSA2. Without Config.Apps any
// app_id is accepted and no signature verified (sign must be present).
//
// Every answer is HTTP 200, Content-Type text/html;charset=utf-8, and
// {"<node>":{…},"sign":"…"}: the node printed as Alipay's Java gateway
// prints it (fields in a fixed order, non-ASCII as UTF-8, "/" as "\/"),
// sign the gateway's SHA256withRSA signature over the node's exact bytes,
// by Config.AlipayKey or a 2048-bit key generated on first use
// (AlipayPublicKey). Errors, fault answers included, are signed alike:
// {"code","msg","sub_code","sub_msg"}, msg Alipay's for the code.
//
//   - In error_response (the method's own checks come before there is a
//     node): 40002 isv.invalid-parameter for a method other than GET or
//     POST or an unreadable body; 40001 isv.missing-method; 40002
//     isv.invalid-method for any method but alipay.system.oauth.token.
//   - In alipay_system_oauth_token_response (the gateway's checks): 40001
//     isv.missing-app-id, 40002 isv.invalid-app-id (not a configured Alipay
//     app), 40001 isv.missing-signature-type, 40002
//     isv.invalid-signature-type (not RSA2), 40001 isv.missing-signature,
//     40002 isv.invalid-charset (missing or not UTF-8), 40001
//     isv.missing-timestamp, 40002 isv.invalid-timestamp (not "yyyy-MM-dd
//     HH:mm:ss"; the time itself is not checked), 40001
//     isv.missing-version, 40002 isv.invalid-parameter (version not 1.0),
//     40002 isv.invalid-format (format not JSON), 40003
//     isv.missing-signature-config (the app has no AlipayPublicKey), 40002
//     isv.invalid-signature, whose sub_msg shows the string the gateway
//     verified, HTML-escaped.
//   - In error_response (the grant): 40002 isv.refresh-token-invalid for
//     grant_type=refresh_token (tokens are not kept), 40002
//     isv.grant-type-invalid for another or no grant_type, 40002
//     isv.code-invalid "授权码code无效" for a code that is missing, unknown,
//     used, expired, another app's or another platform's.
//
// A refused request does not spend its code. Auth codes (POST
// /_emulator/login with "platform":"alipay", or Login) are 28 hex digits,
// two capitals and two digits, single use, 5 minutes. Success follows
// App.AlipayMode: AlipayModeUserID {"access_token","alipay_user_id",
// "expires_in":1296000,"re_expires_in":2592000,"refresh_token","user_id"};
// AlipayModeOpenID, the default, {"access_token","auth_start","expires_in",
// "re_expires_in","refresh_token","open_id"}, auth_start in China time;
// AlipayModeBoth all of these, open_id last. user_id is "2088" and 12
// digits, the same for a user in every app (AlipayUserID, and UnionID for
// Alipay); alipay_user_id "2088" and 28 digits; open_id "083" and 44
// base64url characters per app and user (OpenID). The "authusrB…" tokens
// are not kept: no API the emulator serves takes them.
//
// POST /_emulator/userdata with "platform":"alipay" and "kind":"phone" (or
// AlipayPhone) answers what my.getPhoneNumber gives the mini program:
// {"response","sign","sign_type":"RSA2","encrypt_type":"AES",
// "charset":"UTF-8"}, response the base64 of {"code":"10000","msg":
// "Success","mobile":…} encrypted with App.AESKey (AES-128-CBC, an all-zero
// iv, PKCS #7), sign the gateway's signature over response in its double
// quotes. An app without a 16-byte AES key gets none; kind "userinfo" is a
// 400, Alipay having no encrypted user info.
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
// otherwise; on a Kuaishou path Errcode is the result, 0 if not given;
// on Alipay's gateway Errcode is the code, 20000 for 0 or -1, and Error
// the sub_code, in the method's node and signed), Status the HTTP status
// (alone: a short text body), Empty an
// empty body, Garbage an HTML page, Drop a connection reset. Once one rule
// has shaped the answer, the other is tried only if it merely adds latency.
// On a Baidu path, Errcode 110 or 111 gives the gateway's token error; on
// getunionid, unionId/get and getsessionkey another Errcode or Error goes
// into the path's errno envelope with HTTP 200 (errno 1 when only Error is
// given); on the other Baidu paths it is an OAuth-style error with the
// path's own status (400 on /oauth/2.0/token, 200 elsewhere). A
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
