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

// Code lifetimes: wechat.md §2.4, baidu.md §11.
const (
	wechatCodeLife = 5 * time.Minute
	baiduCodeLife  = 10 * time.Minute
	maxCodeLife    = baiduCodeLife
)

// usersPerGeneration bounds the session keys kept: the emulator remembers at
// least this many of the most recently logged-in users, at most twice as
// many, so a load test with a fresh user per request cannot exhaust memory.
const usersPerGeneration = 1 << 18

func codeLife(platform string) time.Duration {
	if platform == baidu {
		return baiduCodeLife
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

// mintedCode is a code made by the control API or Login.
type mintedCode struct {
	user       userKey
	sessionKey string // given at login; "" = a fresh one at exchange
	expires    time.Time
	used       bool
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
// alphanumerics like wx.login's, 32 hex digits for Baidu.
func (e *Emulator) newCode(platform string) (string, error) {
	if platform == baidu {
		var b [16]byte
		if err := e.readRand(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
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

// mint stores a new code for user. It fails only when the random source does.
func (e *Emulator) mint(u userKey, sessionKey string) (string, error) {
	for range 8 {
		code, err := e.newCode(u.platform)
		if err != nil {
			return "", err
		}
		now := e.now()
		e.mu.Lock()
		e.codes.advance(now)
		_, taken := e.codes.minted.get(code)
		if !taken {
			e.codes.minted.put(code, &mintedCode{user: u, sessionKey: sessionKey, expires: now.Add(codeLife(u.platform))})
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
	now := e.now()
	e.mu.Lock()
	u, given, oc := e.claimLocked(now, x)
	if oc == granted {
		if given != "" {
			key = given
		}
		if len(e.users.cur) >= e.usersPerGen {
			e.users.retire()
		}
		e.users.put(u, key)
	}
	e.mu.Unlock()
	if e.log.Enabled(context.Background(), slog.LevelDebug) { // keep the load-test path free of logging work
		e.log.Debug("emulator: code exchange", "platform", x.platform, "appid", cmp.Or(u.appid, x.appid), "user", u.user, "outcome", oc.String())
	}
	if oc != granted {
		return grant{}, oc
	}
	return grant{
		openid:     openID(u.platform, u.appid, u.user),
		unionid:    unionID(u.platform, e.owner(u.platform, u.appid), u.user),
		sessionKey: key,
	}, granted
}

// claimLocked checks a code and, if it is good, marks it used. A refused
// code is never consumed. It returns the code's user and the session key
// given at login, if any.
func (e *Emulator) claimLocked(now time.Time, x exchangeReq) (userKey, string, outcome) {
	e.codes.advance(now)
	if m, ok := e.codes.minted.get(x.code); ok {
		switch {
		case !now.Before(m.expires), m.user.platform != x.platform, !x.byToken && m.user.appid != x.appid:
			return userKey{}, "", badCode
		case x.byToken && !e.tokenAccepted(m.user.appid, x.token):
			return userKey{}, "", badToken // the gateway checks the token before the code
		case m.used:
			return userKey{}, "", usedCode
		case x.platform == wechat && isBlocked(m.user.user):
			return userKey{}, "", blockedUser
		}
		m.used = true
		return m.user, m.sessionKey, granted
	}

	user, ok := openCodeUser(x.code)
	if !e.openCodes || !ok {
		return userKey{}, "", badCode
	}
	appid := x.appid
	if x.byToken {
		appid = e.appForToken(x.token)
	}
	k := e.codes.openKey(x.platform, x.code)
	if exp, ok := e.codes.open.get(k); ok && now.UnixNano() < exp {
		return userKey{}, "", usedCode
	}
	if x.platform == wechat && isBlocked(user) {
		return userKey{}, "", blockedUser
	}
	e.codes.open.put(k, now.Add(codeLife(x.platform)).UnixNano())
	return userKey{x.platform, appid, user}, "", granted
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
