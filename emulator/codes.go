package emulator

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"log/slog"
	"strings"
	"time"
)

// Code lifetimes: docs/platforms/wechat.md, "Login code exchange", and
// docs/platforms/baidu.md, "Code and session-key lifetimes".
// Alipay's auth codes live "3 minutes to 24 hours"; the emulator takes 5
// minutes, as most hosts' codes live.
const (
	wechatCodeLife = 5 * time.Minute
	baiduCodeLife  = 10 * time.Minute
	alipayCodeLife = 5 * time.Minute
	maxCodeLife    = baiduCodeLife
)

// usersPerGeneration bounds the session keys kept: the emulator remembers at
// least this many of the most recently logged-in users, at most twice as
// many, so a load test with a fresh user per request cannot exhaust memory.
const usersPerGeneration = 1 << 18

func codeLife(platform string) time.Duration {
	switch platform {
	case baidu:
		return baiduCodeLife
	case alipay:
		return alipayCodeLife
	}
	return wechatCodeLife
}

// generations is a map that forgets in bulk: entries go into cur, retire
// moves cur to prev and drops the old prev whole. Forgetting costs nothing
// per entry, so nothing ever scans the map under the lock.
type generations[K comparable, V any] struct {
	cur, prev map[K]V
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.prev[k]
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) {
	if g.cur == nil {
		g.cur = make(map[K]V)
	}
	g.cur[k] = v
	delete(g.prev, k)
}

func (g *generations[K, V]) retire() {
	g.prev, g.cur = g.cur, make(map[K]V)
}

func (g *generations[K, V]) len() int { return len(g.cur) + len(g.prev) }

// mintedCode is a code made by the control API or Login (a login code), or
// by PhoneCode (a getPhoneNumber code). Neither kind is accepted where the
// other is expected.
type mintedCode struct {
	user       userKey
	openid     string // of user, hashed when minted rather than under the lock
	sessionKey string // given at login; "" = a fresh one at exchange
	expires    time.Time
	used       bool
	phone      bool
}

// openKey identifies a used open code by a 128-bit hash of platform and code,
// so a load test's codes do not stay in memory as strings.
type openKey [2]uint64

// codeStore remembers minted codes and used open codes for their lifetime.
// Both live in time generations of maxCodeLife: a generation is retired
// maxCodeLife after it began, and dropped a further maxCodeLife later, when
// every entry in it has expired.
type codeStore struct {
	start  time.Time // when the current generation began
	minted generations[string, *mintedCode]
	open   generations[openKey, int64] // expiry in Unix nanoseconds
	seeds  [2]maphash.Seed
}

func (s *codeStore) init(now time.Time) {
	s.start = now
	s.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
}

// advance retires generations as time passes; call it before every put.
func (s *codeStore) advance(now time.Time) {
	age := now.Sub(s.start)
	if age < maxCodeLife {
		return
	}
	s.minted.retire()
	s.open.retire()
	if age >= 2*maxCodeLife { // the current generation has expired too
		s.minted.retire()
		s.open.retire()
	}
	s.start = now
}

func (s *codeStore) openKey(platform, code string) openKey {
	var h maphash.Hash
	var k openKey
	for i := range k {
		h.SetSeed(s.seeds[i])
		h.WriteString(platform)
		h.WriteByte(0)
		h.WriteString(code)
		k[i] = h.Sum64()
	}
	return k
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newCode returns a fresh, URL-safe code in the platform's look: 32
// alphanumerics like wx.login's, 32 hex digits for Baidu, Alipay's auth
// code (alipayCode), 64 hex digits like getPhoneNumber's for a phone code.
func (e *Emulator) newCode(platform string, phone bool) (string, error) {
	if platform == alipay && !phone {
		return e.alipayCode()
	}
	if platform == baidu || phone {
		var b [32]byte
		n := 16
		if phone {
			n = 32
		}
		if err := e.readRand(b[:n]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:n]), nil
	}
	return e.randomAlnum(32)
}

func (e *Emulator) randomAlnum(n int) (string, error) {
	out := make([]byte, 0, n)
	var buf [48]byte
	for range 16 { // a source that never yields a usable byte must not hang us
		if err := e.readRand(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4*62: no modulo bias
				out = append(out, alnum[b%62])
			}
		}
		if len(out) == n {
			return string(out), nil
		}
	}
	return "", errors.New("random source yields no usable bytes")
}

// mint stores a new login code for user, or a phone code. It fails only
// when the random source does.
func (e *Emulator) mint(u userKey, sessionKey string, phone bool) (string, error) {
	openid := openID(u.platform, u.appid, u.user)
	for range 8 {
		code, err := e.newCode(u.platform, phone)
		if err != nil {
			return "", err
		}
		now := e.now()
		e.mu.Lock()
		e.codes.advance(now)
		_, taken := e.codes.minted.get(code)
		if !taken {
			e.codes.minted.put(code, &mintedCode{user: u, openid: openid, sessionKey: sessionKey,
				expires: now.Add(codeLife(u.platform)), phone: phone})
		}
		e.mu.Unlock()
		if !taken {
			return code, nil
		}
	}
	return "", errors.New("random source repeats itself: every new code was already taken")
}

// outcome is the result of a code exchange, mapped to each platform's error.
type outcome int

const (
	granted     outcome = iota
	badCode             // unknown, expired, another app's or another platform's
	usedCode            // exchanged before, within its lifetime
	blockedUser         // WeChat 40226
	badToken            // Baidu third-party: not the token the code's app accepts
	failed              // the random source failed
)

func (o outcome) String() string {
	switch o {
	case granted:
		return "granted"
	case badCode:
		return "invalid code"
	case usedCode:
		return "code used"
	case blockedUser:
		return "user blocked"
	case badToken:
		return "token refused"
	}
	return "random source failed"
}

// exchangeReq is one code exchange as a platform path saw it.
type exchangeReq struct {
	platform, appid, code string
	// byToken: the request names no app (Baidu third-party), so the code
	// names it, and token must be one that app accepts.
	byToken bool
	token   string
}

// grant is what a successful exchange returns.
type grant struct{ openid, unionid, sessionKey string }

// exchange redeems a code. Checking and consuming happen under one lock, so
// of concurrent exchanges of one code exactly one wins.
func (e *Emulator) exchange(x exchangeReq) (grant, outcome) {
	key, err := e.newSessionKey(x.platform) // outside the lock; wasted only on failures
	if err != nil {
		return grant{}, failed
	}
	open := e.openCandidate(x) // hashed outside the lock
	now := e.now()
	e.mu.Lock()
	u, openid, given, oc := e.claimLocked(now, x, open)
	if oc == granted {
		if given != "" {
			key = given
		}
		e.rememberLocked(u.platform, openid, userRecord{appid: u.appid, user: u.user, sessionKey: key})
	}
	e.mu.Unlock()
	if e.log.Enabled(context.Background(), slog.LevelDebug) { // keep the load-test path free of logging work
		e.log.Debug("emulator: code exchange", "platform", x.platform, "appid", cmp.Or(u.appid, x.appid), "user", u.user, "outcome", oc.String())
	}
	if oc != granted {
		return grant{}, oc
	}
	return grant{
		openid:     openid,
		unionid:    unionID(u.platform, e.owner(u.platform, u.appid), u.user),
		sessionKey: key,
	}, granted
}

// openCode is the user an open code would belong to, with its openid.
type openCode struct {
	user   userKey
	openid string
	ok     bool
}

// openCandidate parses x.code as an open code, if open codes are on.
func (e *Emulator) openCandidate(x exchangeReq) openCode {
	user, ok := openCodeUser(x.code)
	if !e.openCodes || !ok {
		return openCode{}
	}
	appid := x.appid
	if x.byToken {
		appid = e.appForToken(x.token)
	}
	return openCode{user: userKey{x.platform, appid, user}, openid: openID(x.platform, appid, user), ok: true}
}

// claimLocked checks a login code and, if it is good, marks it used. A
// refused code is never consumed. It returns the code's user, its openid
// and the session key given at login, if any.
func (e *Emulator) claimLocked(now time.Time, x exchangeReq, open openCode) (userKey, string, string, outcome) {
	e.codes.advance(now)
	if m, ok := e.codes.minted.get(x.code); ok {
		switch {
		case m.phone, !now.Before(m.expires), m.user.platform != x.platform, !x.byToken && m.user.appid != x.appid:
			return userKey{}, "", "", badCode
		case x.byToken && !e.tokenAccepted(m.user.appid, x.token):
			return userKey{}, "", "", badToken // the gateway checks the token before the code
		case m.used:
			return userKey{}, "", "", usedCode
		case x.platform == wechat && isBlocked(m.user.user):
			return userKey{}, "", "", blockedUser
		}
		m.used = true
		return m.user, m.openid, m.sessionKey, granted
	}

	if !open.ok {
		return userKey{}, "", "", badCode
	}
	k := e.codes.openKey(x.platform, x.code)
	if exp, ok := e.codes.open.get(k); ok && now.UnixNano() < exp {
		return userKey{}, "", "", usedCode
	}
	if x.platform == wechat && isBlocked(open.user.user) {
		return userKey{}, "", "", blockedUser
	}
	e.codes.open.put(k, now.Add(codeLife(x.platform)).UnixNano())
	return open.user, open.openid, "", granted
}

// phoneClaim is the outcome of presenting a phone code.
type phoneClaim int

const (
	phoneGranted   phoneClaim = iota
	phoneBadCode              // unknown, used, expired, another app's, a login code: 40029
	phoneOtherUser            // a good code, but openid is not its user's: 40003
)

// claimPhoneLocked checks a phone code presented by appid of platform,
// with the openid of the user it must belong to ("" for any), and, if both
// are good, marks it used. A refused code is not spent.
func (e *Emulator) claimPhoneLocked(now time.Time, platform, appid, openid, code string) (userKey, phoneClaim) {
	e.codes.advance(now)
	m, ok := e.codes.minted.get(code)
	if !ok || !m.phone || m.used || !now.Before(m.expires) || m.user.platform != platform || m.user.appid != appid {
		return userKey{}, phoneBadCode
	}
	if openid != "" && openid != m.openid {
		return userKey{}, phoneOtherUser
	}
	m.used = true
	return m.user, phoneGranted
}

// openCodeUser parses an open code, "<user>.<anything>".
func openCodeUser(code string) (string, bool) {
	i := strings.IndexByte(code, '.')
	if i <= 0 {
		return "", false
	}
	return code[:i], true
}

// isBlocked: simulated users named blocked… are high-risk users whose login
// WeChat refuses with 40226.
func isBlocked(user string) bool { return strings.HasPrefix(user, "blocked") }

// tokenAccepted reports whether a Baidu app accepts a third-party token.
func (e *Emulator) tokenAccepted(appid, token string) bool {
	a, _, _ := e.app(baidu, appid)
	return secretOK(a.ThirdPartyToken, token)
}

// appForToken attributes an open code on the Baidu third-party path, whose
// request names no app: the app whose token it is, else the nameless app "".
func (e *Emulator) appForToken(token string) string {
	for _, a := range e.tokenApps {
		if secretOK(a.ThirdPartyToken, token) {
			return a.AppID
		}
	}
	return ""
}
