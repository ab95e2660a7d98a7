package emulator

import (
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Access-token rules (docs/platforms/wechat.md and docs/platforms/baidu.md,
// "Access tokens").
const (
	wechatTokenLife = 7200 * time.Second
	baiduTokenLife  = 2592000 * time.Second // 30 days
	// tokenOverlap is how long a classic token outlives its successor, and
	// how long before its expiry a stable token is renewed: 5 minutes.
	tokenOverlap = 5 * time.Minute
	// Forced stable_token refreshes: at most this many a day, this far apart.
	forcePerDay  = 20
	forceSpacing = 30 * time.Second
)

// tokenKind is one of the token series an app has. WeChat's classic and
// stable tokens are isolated from each other
// (docs/platforms/wechat.md, "Access tokens").
type tokenKind uint8

const (
	classicToken  tokenKind = iota // WeChat GET /cgi-bin/token
	stableToken                    // WeChat POST /cgi-bin/stable_token
	baiduAppToken                  // Baidu /oauth/2.0/token (client_credentials)
	qqAppToken                     // QQ GET /api/getToken
	ksAppToken                     // Kuaishou /oauth2/access_token (client_credentials)
)

func (k tokenKind) platform() string {
	switch k {
	case douyinAppToken:
		return douyin
	case baiduAppToken:
		return baidu
	case qqAppToken:
		return qq
	case ksAppToken:
		return kuaishou
	}
	return wechat
}

// kindsOf lists the token series of a platform.
func kindsOf(platform string) []tokenKind {
	switch platform {
	case douyin:
		return []tokenKind{douyinAppToken}
	case baidu:
		return []tokenKind{baiduAppToken}
	case qq:
		return []tokenKind{qqAppToken}
	case kuaishou:
		return []tokenKind{ksAppToken}
	case alipay:
		return nil // the user tokens of oauth.token are not kept
	}
	return []tokenKind{classicToken, stableToken}
}

type tokenSlot struct {
	kind  tokenKind
	appid string
}

// tokenSeries is one app's tokens of one kind: at most the current token
// and the one before it are valid, so memory stays bounded per app.
type tokenSeries struct {
	cur, prev string
	// Forced refreshes (stable_token): the day counted (China time), how
	// many that day, and when the last one happened.
	forceDay  string
	forces    int
	lastForce time.Time
}

type issuedToken struct {
	slot    tokenSlot
	expires time.Time
	cut     bool // expires was brought forward by a newer fetch: "not latest" once past it
}

// tokenStore holds every token the emulator issued that may still be
// valid, indexed by the token itself, so that a business API that receives
// only access_token finds the app it belongs to.
type tokenStore struct {
	mu     sync.Mutex
	series map[tokenSlot]*tokenSeries
	issued map[string]*issuedToken
}

func (s *tokenStore) init() {
	s.series = make(map[tokenSlot]*tokenSeries)
	s.issued = make(map[string]*issuedToken)
}

func (s *tokenStore) seriesLocked(slot tokenSlot) *tokenSeries {
	st := s.series[slot]
	if st == nil {
		st = &tokenSeries{}
		s.series[slot] = st
	}
	return st
}

// liveLocked returns the time left to tok, and whether it is still valid.
func (s *tokenStore) liveLocked(tok string, now time.Time) (time.Duration, bool) {
	it := s.issued[tok]
	if it == nil || !now.Before(it.expires) {
		return 0, false
	}
	return it.expires.Sub(now), true
}

func (s *tokenStore) dropLocked(toks ...string) {
	for _, t := range toks {
		delete(s.issued, t)
	}
}

// rotateLocked makes tok the current token of slot. The previous current
// token stays valid for at most keep (its own expiry if sooner; keep < 0:
// until its own expiry); the one before it stops at once.
func (s *tokenStore) rotateLocked(slot tokenSlot, tok string, now time.Time, life, keep time.Duration) {
	st := s.seriesLocked(slot)
	s.dropLocked(st.prev)
	st.prev = ""
	if _, ok := s.liveLocked(st.cur, now); ok {
		if it := s.issued[st.cur]; keep >= 0 && now.Add(keep).Before(it.expires) {
			it.expires, it.cut = now.Add(keep), true
		}
		st.prev = st.cur
	} else {
		s.dropLocked(st.cur)
	}
	st.cur = tok
	s.issued[tok] = &issuedToken{slot: slot, expires: now.Add(life)}
}

// forceAllowedLocked applies the force_refresh limits and counts a
// permitted refresh.
func forceAllowedLocked(st *tokenSeries, now time.Time) bool {
	// WeChat's days are China's: UTC+8, no daylight saving.
	day := now.UTC().Add(8 * time.Hour).Format(time.DateOnly)
	if st.forceDay != day {
		st.forceDay, st.forces = day, 0
	}
	if st.forces >= forcePerDay || (!st.lastForce.IsZero() && now.Sub(st.lastForce) < forceSpacing) {
		return false
	}
	st.forces++
	st.lastForce = now
	return true
}

// tokenAnswer is what a token fetch answers.
type tokenAnswer struct {
	token     string
	expiresIn int64 // seconds
}

func answer(tok string, left time.Duration) tokenAnswer {
	return tokenAnswer{token: tok, expiresIn: int64(left / time.Second)}
}

// issueClassic serves a cgi-bin/token fetch: always a new token; the
// previous one stays valid 5 more minutes, the one before it not at all.
func (e *Emulator) issueClassic(appid string) (tokenAnswer, error) {
	tok, err := e.newToken(classicToken)
	if err != nil {
		return tokenAnswer{}, err
	}
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	e.tokens.rotateLocked(tokenSlot{classicToken, appid}, tok, now, wechatTokenLife, tokenOverlap)
	return answer(tok, wechatTokenLife), nil
}

// issueStable serves a stable_token fetch.
//
// Normal mode returns the current token while at least 5 minutes of it
// remain; in its last 5 minutes (or when there is none, or it was expired)
// a new one is issued and the old one stays valid until its own expiry.
// So every answer has expires_in >= 300.
//
// Force mode issues a new token at once and invalidates the old ones at
// once, at most 20 times a day (China time) and 30 s apart. A force refresh
// beyond those limits is answered exactly as normal mode would answer, and
// does not count: no error, the current token and its remaining lifetime.
func (e *Emulator) issueStable(appid string, force bool) (tokenAnswer, bool, error) {
	// Drawn before the lock; unused when the current token is returned.
	fresh, err := e.newToken(stableToken)
	if err != nil {
		return tokenAnswer{}, false, err
	}
	now := e.now()
	slot := tokenSlot{stableToken, appid}
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	st := e.tokens.seriesLocked(slot)
	if force && forceAllowedLocked(st, now) {
		e.tokens.dropLocked(st.cur, st.prev)
		st.cur, st.prev = "", ""
		e.tokens.rotateLocked(slot, fresh, now, wechatTokenLife, -1)
		return answer(fresh, wechatTokenLife), true, nil
	}
	if left, ok := e.tokens.liveLocked(st.cur, now); ok && left >= tokenOverlap {
		return answer(st.cur, left), false, nil
	}
	e.tokens.rotateLocked(slot, fresh, now, wechatTokenLife, -1)
	return answer(fresh, wechatTokenLife), false, nil
}

// issueBaidu serves a client_credentials fetch: a new token each time;
// the previous one stays valid until its own expiry, older ones do not.
func (e *Emulator) issueBaidu(appid string) (tokenAnswer, error) {
	tok, err := e.newToken(baiduAppToken)
	if err != nil {
		return tokenAnswer{}, err
	}
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	e.tokens.rotateLocked(tokenSlot{baiduAppToken, appid}, tok, now, baiduTokenLife, -1)
	return answer(tok, baiduTokenLife), nil
}

// newToken makes a token in the platform's look: 128 alphanumerics for
// WeChat (whose tokens need up to 512 characters of storage), and
// "24.<hex>.2592000.<unix time>.<random>" for Baidu's app tokens.
func (e *Emulator) newToken(kind tokenKind) (string, error) {
	if kind != baiduAppToken {
		return e.randomAlnum(128)
	}
	var b [16]byte
	if err := e.readRand(b[:]); err != nil {
		return "", err
	}
	tail, err := e.randomAlnum(12)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("24.%s.%d.%d.%s", hex.EncodeToString(b[:]), int64(baiduTokenLife/time.Second), e.now().Unix(), tail), nil
}

// tokenState is what a token-authenticated path learns about the
// access_token it was given.
type tokenState uint8

const (
	tokenOK      tokenState = iota
	tokenMissing            // no access_token parameter
	tokenUnknown            // never issued, superseded, expired with ExpireTokens, or another platform's
	tokenExpired            // issued, and past its expiry
)

// checkToken returns the app a valid access token of platform belongs to,
// or why the token is refused. It is the check every token-authenticated
// path uses. A token that reached the end of its own life is told apart
// from an unknown one while the emulator still remembers it (until the
// app's next fetch of the same kind: only the current and previous token
// are kept); one replaced by a newer fetch counts as unknown.
func (e *Emulator) checkToken(platform, token string) (string, tokenState) {
	if token == "" {
		return "", tokenMissing
	}
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	it := e.tokens.issued[token]
	switch {
	case it == nil || it.slot.kind.platform() != platform:
		return "", tokenUnknown
	case !now.Before(it.expires) && it.cut:
		return "", tokenUnknown // replaced by a newer token, not expired of age
	case !now.Before(it.expires):
		return "", tokenExpired
	}
	return it.slot.appid, tokenOK
}

// tokenOwner returns the app a valid access token of platform belongs to.
func (e *Emulator) tokenOwner(platform, token string) (string, bool) {
	appid, st := e.checkToken(platform, token)
	return appid, st == tokenOK
}

// TokenValid reports whether token is an access token the emulator issued
// to the app (classic or stable for WeChat, client_credentials for Baidu)
// and would accept now, by Config.Now.
func (e *Emulator) TokenValid(platform, appid, token string) bool {
	p, ok := normalizePlatform(platform)
	if !ok {
		return false
	}
	owner, ok := e.tokenOwner(p, token)
	return ok && owner == appid
}

// ExpireTokens makes every access token of the app invalid at once, as if
// they had expired: the next fetch, stable_token normal mode included,
// issues a new one. It does not touch the force_refresh counts.
func (e *Emulator) ExpireTokens(platform, appid string) {
	p, ok := normalizePlatform(platform)
	if !ok {
		return
	}
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	for _, k := range kindsOf(p) {
		if st := e.tokens.series[tokenSlot{k, appid}]; st != nil {
			e.tokens.dropLocked(st.cur, st.prev)
			st.cur, st.prev = "", ""
		}
	}
	e.log.Info("emulator: access tokens expired", "platform", p, "appid", appid)
}
