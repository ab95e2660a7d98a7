package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// userKey is a simulated user of one app.
type userKey struct{ platform, appid, user string }

// idKey finds a user by openid, which is what the business APIs name.
// Openids are hashes of (platform, appid, user), so they do not collide
// across apps.
type idKey struct{ platform, openid string }

// userRecord is a user who exchanged a code: whose openid it is, and the
// session key the user holds now.
type userRecord struct {
	appid, user string
	sessionKey  string
}

func (r userRecord) is(u userKey) bool { return r.appid == u.appid && r.user == u.user }

// rememberLocked stores a user's current session key. At most usersPerGen
// users are added to a generation, so memory stays bounded.
func (e *Emulator) rememberLocked(platform, openid string, rec userRecord) {
	if len(e.users.cur) >= e.usersPerGen {
		if _, ok := e.users.cur[idKey{platform, openid}]; !ok {
			e.users.retire()
		}
	}
	e.users.put(idKey{platform, openid}, rec)
}

// sessionOf returns a user's current session key, if the user has one.
func (e *Emulator) sessionOf(u userKey) (string, bool) {
	id := idKey{u.platform, openID(u.platform, u.appid, u.user)}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.users.get(id)
	if !ok || !rec.is(u) {
		return "", false
	}
	return rec.sessionKey, true
}

// userByOpenID returns the user an openid of platform belongs to, if that
// user has exchanged a code (and was not forgotten since).
func (e *Emulator) userByOpenID(platform, openid string) (userRecord, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.users.get(idKey{platform, openid})
}

// Session keys: base64 of 16 bytes (AES-128) for WeChat, 24 (AES-192) for Baidu.
func sessionKeyLen(platform string) int {
	if platform == baidu {
		return 24
	}
	return 16
}

func (e *Emulator) newSessionKey(platform string) (string, error) {
	var b [24]byte
	k := b[:sessionKeyLen(platform)]
	if err := e.readRand(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// checkSessionKey validates a session key given at login.
func checkSessionKey(platform, key string) error {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return fmt.Errorf("session_key is not standard base64")
	}
	if n := sessionKeyLen(platform); len(raw) != n {
		return fmt.Errorf("session_key must be base64 of %d bytes for %s, not %d", n, platform, len(raw))
	}
	return nil
}

// Identifiers are derived by hashing, not stored, so they survive a restart
// of the emulator and never need memory.

// openID is stable per (platform, app, user): "o" + 27 base64url characters
// for WeChat (28 in all, like real openids), 26 alphanumerics for Baidu.
func openID(platform, appid, user string) string {
	sum := digest("openid", platform, appid, user)
	if platform == douyin || platform == douyinAnon {
		return douyinOpenID(sum)
	}
	if platform == alipay {
		return alipayOpenID(sum, digest("openid-tail", platform, appid, user))
	}
	if platform == baidu {
		return alnumOf(sum[:], 26)
	}
	return wechatID(sum)
}

// unionID is stable per (platform, owner, user), so it is shared by the
// apps of one owner: "o" + 27 characters for WeChat, "S" + 22 for Baidu.
// Alipay's is the user_id, which the owner does not change.
func unionID(platform, owner, user string) string {
	if platform == alipay {
		return alipayUserID(user)
	}
	sum := digest("unionid", platform, owner, user)
	if platform == douyin {
		return douyinUnionID(sum)
	}
	if platform == baidu {
		return "S" + alnumOf(sum[:], 22)
	}
	return wechatID(sum)
}

// wechatID is "o" and the first 27 base64url characters of sum.
func wechatID(sum [32]byte) string {
	var b [29]byte
	b[0] = 'o'
	base64.RawURLEncoding.Encode(b[1:], sum[:21]) // 21 bytes: 28 characters
	return string(b[:28])
}

// digest hashes length-prefixed parts, so no two part lists collide.
func digest(parts ...string) [32]byte {
	var buf [256]byte // short inputs hash without a heap allocation
	b := buf[:0]
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return sha256.Sum256(b)
}

// alnumOf spells the first n bytes of b in [0-9A-Za-z]; a slight modulo bias
// does not matter for an identifier.
func alnumOf(b []byte, n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = alnum[b[i]%62]
	}
	return string(out)
}

// OpenID returns the openid a user of an app gets, or "" for an unknown
// platform. It does not need the user to have logged in. For Alipay it is
// the open_id, whatever the app's mode.
func (e *Emulator) OpenID(platform, appid, user string) string {
	p, ok := normalizePlatform(platform)
	if !ok {
		return ""
	}
	return openID(p, appid, user)
}

// UnionID returns the unionid a user of an app gets (the same for every app
// of the app's owner), or "" for an unknown platform or one that gives
// none (Kuaishou). For Alipay it is the user_id (AlipayUserID), whatever
// the app's mode: the id Alipay gives a user in every app.
func (e *Emulator) UnionID(platform, appid, user string) string {
	p, ok := normalizePlatform(platform)
	if !ok || p == kuaishou {
		return ""
	}
	return unionID(p, e.owner(p, appid), user)
}

// SessionKey returns the user's current session key (base64), set by the
// user's latest code exchange or WeChat resetusersessionkey; false if the
// user has not exchanged a code (or was forgotten: see usersPerGeneration).
func (e *Emulator) SessionKey(platform, appid, user string) (string, bool) {
	p, ok := normalizePlatform(platform)
	if !ok {
		return "", false
	}
	return e.sessionOf(userKey{p, appid, user})
}

// Login mints a login code for a simulated user, as wx.login or swan.login
// would; exchanging it gives the user sessionKey if non-empty (base64 of 16
// bytes for WeChat, 24 for Baidu), else a fresh one. With Config.Apps set,
// the app must be one of them.
func (e *Emulator) Login(platform, appid, user, sessionKey string) (string, error) {
	code, cerr := e.login(platform, appid, user, sessionKey)
	if cerr != nil {
		return "", cerr
	}
	return code, nil
}

func (e *Emulator) login(platform, appid, user, sessionKey string) (string, *controlError) {
	p, ok := normalizePlatform(platform)
	switch {
	case !ok:
		return "", invalidRequest(unknownPlatform)
	case appid == "":
		return "", invalidRequest("appid is required")
	case user == "":
		return "", invalidRequest("user is required")
	}
	if cerr := e.knownApp(p, appid); cerr != nil {
		return "", cerr
	}
	if sessionKey != "" {
		if p == alipay {
			return "", invalidRequest("Alipay has no session keys: leave session_key out")
		}
		if err := checkSessionKey(p, sessionKey); err != nil {
			return "", invalidRequest(err.Error())
		}
	}
	code, err := e.mint(userKey{p, appid, user}, sessionKey, false)
	if err != nil {
		e.log.Error("emulator: cannot mint a code", "err", err)
		return "", &controlError{status: 500, code: "internal_error", message: "cannot mint a code: " + err.Error()}
	}
	return code, nil
}

// unknownPlatform is the control API's answer to a platform it does not
// serve.
const unknownPlatform = `platform must be "wechat", "baidu", "douyin", "qq", "kuaishou" or "alipay"`

// knownApp refuses, with Config.Apps set, an app that is not one of them.
func (e *Emulator) knownApp(platform, appid string) *controlError {
	if _, known, checked := e.app(platform, appid); checked && !known {
		return &controlError{status: 400, code: "unknown_app", message: fmt.Sprintf("no %s app with appid %q is configured", platform, appid)}
	}
	return nil
}
