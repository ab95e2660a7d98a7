package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// sweepChunk bounds the sessions or codes one DeleteExpired script looks
// at, so that no script blocks Redis for long.
const sweepChunk = 500

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	const op = "create session"
	if err := checkSession(sess); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	n, err := s.run(ctx, createScript, sessionArgs(sess)...).Int64()
	return s.created(ctx, op, n, err)
}

// CreateLoginSession implements store.SessionStore in one script.
func (s *Store) CreateLoginSession(ctx context.Context, c store.ExchangedCode, sess store.Session) error {
	const op = "create login session"
	if err := checkSession(sess); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := checkCode(c); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	n, err := s.run(ctx, loginScript, append(sessionArgs(sess), codeArgs(c)...)...).Int64()
	return s.created(ctx, op, n, err)
}

func checkSession(sess store.Session) error {
	switch {
	case sess.ID == "" || len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0:
		return errors.New("empty ID, access hash or refresh hash")
	case sess.RefreshExpiresAt.IsZero():
		return errors.New("zero refresh expiry")
	}
	return nil
}

// sessionArgs are the fields of sess in the scripts' order, hashes as
// bytes.
func sessionArgs(sess store.Session) []any {
	return []any{
		sess.ID, sess.UserID, sess.App, string(sess.Family), sess.AppID, sess.OpenID, sess.UnionID,
		sess.AccessHash, us(sess.AccessExpiresAt),
		sess.RefreshHash, us(sess.RefreshExpiresAt),
		us(sess.CreatedAt), us(sess.ExpiresAt), us(sess.LastUsedAt), us(sess.RevokedAt),
		strconv.Itoa(sess.DecryptFailures), sess.Origin,
	}
}

// created turns createSession's answer into an error.
func (s *Store) created(ctx context.Context, op string, n int64, err error) error {
	if err != nil {
		return s.fail(ctx, op, err)
	}
	switch n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("redis: %s: session already exists", op)
	case 2:
		return fmt.Errorf("redis: %s: access hash already in use", op)
	case 3:
		return fmt.Errorf("redis: %s: refresh hash already in use", op)
	}
	return fmt.Errorf("redis: %s: unexpected script result %d", op, n)
}

// SessionByAccess implements store.Sessions in one GET.
func (s *Store) SessionByAccess(ctx context.Context, accessHash []byte) (store.Session, error) {
	const op = "session by access"
	if err := s.begin(ctx, op); err != nil {
		return store.Session{}, err
	}
	if len(accessHash) == 0 {
		return store.Session{}, notFound(op)
	}
	v, err := s.get(ctx, hexKey(s.accessPrefix, accessHash))
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.Session{}, notFound(op)
		}
		return store.Session{}, s.fail(ctx, op, err)
	}
	sess, err := decodeSession(op, v)
	if err == nil && !bytes.Equal(sess.AccessHash, accessHash) {
		// Never hand out another session, whatever went wrong.
		return store.Session{}, fmt.Errorf("redis: %s: the session under the key has another access hash", op)
	}
	return sess, err
}

// SessionForLogout implements store.Sessions in one script.
func (s *Store) SessionForLogout(ctx context.Context, accessHash []byte) (store.Session, error) {
	const op = "session for logout"
	if err := s.begin(ctx, op); err != nil {
		return store.Session{}, err
	}
	if len(accessHash) == 0 {
		return store.Session{}, notFound(op)
	}
	v, err := s.run(ctx, sessionForLogoutScript, accessHash).Text()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.Session{}, notFound(op)
		}
		return store.Session{}, s.fail(ctx, op, err)
	}
	return decodeSession(op, v)
}

// SessionByID implements store.Sessions.
func (s *Store) SessionByID(ctx context.Context, id string) (store.Session, error) {
	const op = "session by id"
	if err := s.begin(ctx, op); err != nil {
		return store.Session{}, err
	}
	v, err := s.run(ctx, sessionByIDScript, id).Text()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.Session{}, notFound(op)
		}
		return store.Session{}, s.fail(ctx, op, err)
	}
	return decodeSession(op, v)
}

// SessionByRefresh implements store.Sessions in one script.
func (s *Store) SessionByRefresh(ctx context.Context, refreshHash []byte) (store.Session, error) {
	const op = "session by refresh"
	if err := s.begin(ctx, op); err != nil {
		return store.Session{}, err
	}
	if len(refreshHash) == 0 {
		return store.Session{}, notFound(op)
	}
	v, err := s.run(ctx, sessionByRefreshScript, refreshHash).Text()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.Session{}, notFound(op)
		}
		return store.Session{}, s.fail(ctx, op, err)
	}
	return decodeSession(op, v)
}

// RotateRefresh implements store.Sessions in one script.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Session, error) {
	const op = "rotate refresh"
	if len(r.NewAccessHash) == 0 || len(r.NewRefreshHash) == 0 {
		return store.Session{}, fmt.Errorf("redis: %s: empty new access or refresh hash", op)
	}
	if r.Now.IsZero() || r.RefreshExpiresAt.IsZero() {
		return store.Session{}, fmt.Errorf("redis: %s: zero time or refresh expiry", op)
	}
	if err := s.begin(ctx, op); err != nil {
		return store.Session{}, err
	}
	if len(r.OldRefreshHash) == 0 {
		return store.Session{}, notFound(op)
	}
	res, err := s.run(ctx, rotateScript,
		r.OldRefreshHash, r.NewAccessHash, us(r.AccessExpiresAt),
		r.NewRefreshHash, us(r.RefreshExpiresAt),
		us(r.Now), r.Successor, us(r.SuccessorUntil),
	).Result()
	if err != nil {
		return store.Session{}, s.fail(ctx, op, err)
	}
	switch v := res.(type) {
	case string:
		return decodeSession(op, v)
	case []any:
		// A spent token: {session} when it revoked the session, {session,
		// successor} within the last rotation's grace.
		var blob, succ string
		ok := len(v) == 1 || len(v) == 2
		if ok {
			blob, ok = v[0].(string)
		}
		if ok && len(v) == 2 {
			succ, ok = v[1].(string)
		}
		if !ok {
			break
		}
		sess, err := decodeSession(op, blob)
		if err != nil {
			return store.Session{}, err
		}
		if len(v) == 1 {
			return sess, fmt.Errorf("redis: %s: %w", op, store.ErrReused)
		}
		sess.Successor = []byte(succ)
		return sess, fmt.Errorf("redis: %s: %w", op, store.ErrRecentlySpent)
	case int64:
		switch v {
		case 0:
			return store.Session{}, notFound(op)
		case 2:
			return store.Session{}, fmt.Errorf("redis: %s: access hash already in use", op)
		case 3:
			return store.Session{}, fmt.Errorf("redis: %s: refresh hash already in use", op)
		}
	}
	return store.Session{}, fmt.Errorf("redis: %s: unexpected script result %v", op, res)
}

// RevokeSession implements store.Sessions. A zero now revokes nothing, as
// a zero RevokedAt means "not revoked".
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time) error {
	const op = "revoke session"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	if now.IsZero() {
		return nil
	}
	return s.fail(ctx, op, s.run(ctx, revokeScript, id, us(now)).Err())
}

// RevokeUserSessions implements store.Sessions in one script, through the
// index of each user's session IDs. A zero r.Now revokes nothing, as in
// RevokeSession.
func (s *Store) RevokeUserSessions(ctx context.Context, r store.UserRevocation) (int, error) {
	const op = "revoke user sessions"
	if err := s.begin(ctx, op); err != nil {
		return 0, err
	}
	if r.Now.IsZero() {
		return 0, nil
	}
	n, err := s.run(ctx, revokeUserScript, r.UserID, us(r.Now), string(r.Family), r.AppID, r.OpenID,
		r.Origin, max(r.Keep, 0)).Int64()
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return int(n), nil
}

// AddDecryptFailure implements store.Sessions in one script.
func (s *Store) AddDecryptFailure(ctx context.Context, sessionID string) (int, error) {
	const op = "add decrypt failure"
	if err := s.begin(ctx, op); err != nil {
		return 0, err
	}
	n, err := s.run(ctx, decryptFailureScript, sessionID).Int64()
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	if n < 0 {
		return 0, notFound(op)
	}
	return int(n), nil
}

// PutCode implements store.Sessions.
func (s *Store) PutCode(ctx context.Context, c store.ExchangedCode) error {
	const op = "put code"
	if err := checkCode(c); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.fail(ctx, op, s.run(ctx, putCodeScript, codeArgs(c)...).Err())
}

func checkCode(c store.ExchangedCode) error {
	switch {
	case len(c.Hash) == 0:
		return errors.New("empty code hash")
	case c.ExpiresAt.IsZero():
		return errors.New("zero code expiry")
	}
	return nil
}

// codeArgs are putCode's arguments: the hash (hex), the encoded code, the
// expiry. The last three fields came later: decodeCode also takes codes
// written without them.
func codeArgs(c store.ExchangedCode) []any {
	exp, h := us(c.ExpiresAt), hex.EncodeToString(c.Hash)
	var b []byte
	for _, f := range []string{exp, c.App, string(c.Family), c.AppID, c.OpenID, h,
		c.SessionID, us(c.ReplayUntil), strconv.Itoa(c.Replays)} {
		b = appendField(b, f)
	}
	return []any{h, b, exp}
}

// Indexes into an encoded code's fields, in codeArgs's order.
const (
	cExpiresAt = iota
	cApp
	cFamily
	cAppID
	cOpenID
	cHash
	cSessionID // codes written before it came have only the fields above
	cReplayUntil
	cReplays
	cFields
)

// decodeCode decodes the code codeArgs encoded, stored under hash.
func decodeCode(op string, hash []byte, v string) (store.ExchangedCode, error) {
	var f [cFields]string
	n, err := splitFields(v, f[:])
	if err == nil && n != cSessionID && n != cFields {
		err = fmt.Errorf("bad stored value: %d fields", n)
	}
	if err != nil {
		return store.ExchangedCode{}, fmt.Errorf("redis: %s: %w", op, err)
	}
	if f[cHash] != hex.EncodeToString(hash) {
		return store.ExchangedCode{}, fmt.Errorf("redis: %s: the code under the key has another hash", op)
	}
	exp, err := parseTime(f[cExpiresAt])
	if err != nil || exp.IsZero() {
		return store.ExchangedCode{}, fmt.Errorf("redis: %s: bad stored expiry %q", op, f[cExpiresAt])
	}
	c := store.ExchangedCode{
		Hash:      clone(hash),
		App:       f[cApp],
		Family:    platform.Family(f[cFamily]),
		AppID:     f[cAppID],
		OpenID:    f[cOpenID],
		ExpiresAt: exp,
		SessionID: f[cSessionID],
	}
	if n == cFields {
		if c.ReplayUntil, err = parseTime(f[cReplayUntil]); err != nil {
			return store.ExchangedCode{}, fmt.Errorf("redis: %s: bad stored time %q", op, f[cReplayUntil])
		}
		if c.Replays, err = strconv.Atoi(f[cReplays]); err != nil {
			return store.ExchangedCode{}, fmt.Errorf("redis: %s: bad stored count %q", op, f[cReplays])
		}
	}
	return c, nil
}

// GetCode implements store.Sessions in one GET; the expiry is compared with
// now whatever the key's TTL.
func (s *Store) GetCode(ctx context.Context, hash []byte, now time.Time) (store.ExchangedCode, error) {
	const op = "get code"
	if err := s.begin(ctx, op); err != nil {
		return store.ExchangedCode{}, err
	}
	if len(hash) == 0 {
		return store.ExchangedCode{}, notFound(op)
	}
	v, err := s.get(ctx, hexKey(s.codePrefix, hash))
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.ExchangedCode{}, notFound(op)
		}
		return store.ExchangedCode{}, s.fail(ctx, op, err)
	}
	c, err := decodeCode(op, hash, v)
	if err != nil {
		return store.ExchangedCode{}, err
	}
	if now.UnixMicro() >= c.ExpiresAt.UnixMicro() {
		return store.ExchangedCode{}, notFound(op)
	}
	return c, nil
}

// ClaimReplay implements store.Sessions in one script.
func (s *Store) ClaimReplay(ctx context.Context, hash []byte, now time.Time, max int) (store.ExchangedCode, error) {
	const op = "claim replay"
	if err := s.begin(ctx, op); err != nil {
		return store.ExchangedCode{}, err
	}
	if len(hash) == 0 || now.IsZero() {
		// Nothing is before the zero time, so no code is unexpired at it.
		return store.ExchangedCode{}, notFound(op)
	}
	res, err := s.run(ctx, claimReplayScript, hex.EncodeToString(hash), us(now), max).Slice()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return store.ExchangedCode{}, notFound(op)
		}
		return store.ExchangedCode{}, s.fail(ctx, op, err)
	}
	var v string
	var won int64
	ok := len(res) == 2
	if ok {
		won, ok = res[0].(int64)
	}
	if ok {
		v, ok = res[1].(string)
	}
	if !ok {
		return store.ExchangedCode{}, fmt.Errorf("redis: %s: unexpected script result %v", op, res)
	}
	c, err := decodeCode(op, hash, v)
	if err != nil {
		return store.ExchangedCode{}, err
	}
	if won != 1 {
		return c, fmt.Errorf("redis: %s: %w", op, store.ErrReplayRefused)
	}
	return c, nil
}

// DeleteExpired implements store.Sessions: it deletes the codes and sessions
// dead at now that the TTLs have not removed yet, a chunk per script (see
// the package comment), and returns how many it deleted.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, step := range []struct {
		op     string
		script *goredis.Script
	}{
		{"delete expired codes", sweepCodesScript},
		{"delete expired sessions", sweepSessionsScript},
	} {
		for {
			if err := s.begin(ctx, step.op); err != nil {
				return total, err
			}
			if now.IsZero() {
				break // nothing is dead before the zero time
			}
			res, err := s.run(ctx, step.script, us(now), sweepChunk).Int64Slice()
			if err == nil && len(res) != 3 {
				err = fmt.Errorf("unexpected script result %v", res)
			}
			if err != nil {
				return total, s.fail(ctx, step.op, err)
			}
			total += int(res[0])
			// Stop at a short chunk, or one that settled nothing (which
			// only scores past 2^53 µs could cause).
			if res[1] < sweepChunk || res[2] == 0 {
				break
			}
		}
	}
	return total, nil
}

// us encodes t as decimal Unix microseconds (whole microseconds kept, as
// the SQL backends do); the zero time is "".
func us(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// parseTime decodes what us encoded, in UTC.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(n).UTC(), nil
}

// appendField appends f as <length>:<bytes>.
func appendField(b []byte, f string) []byte {
	b = strconv.AppendInt(b, int64(len(f)), 10)
	b = append(b, ':')
	return append(b, f...)
}

// splitFields splits v, a sequence of <length>:<bytes> fields, into out
// and returns how many fields v had: at most len(out), as values written
// before fields were added have fewer. The fields share v's memory.
func splitFields(v string, out []string) (int, error) {
	for i := range out {
		if v == "" {
			return i, nil
		}
		c := strings.IndexByte(v, ':')
		if c <= 0 {
			return 0, fmt.Errorf("bad stored value: field %d", i)
		}
		n := 0
		for _, d := range v[:c] {
			if d < '0' || d > '9' || n > len(v) {
				return 0, fmt.Errorf("bad stored value: field %d length", i)
			}
			n = n*10 + int(d-'0')
		}
		v = v[c+1:]
		if n > len(v) {
			return 0, fmt.Errorf("bad stored value: field %d too long", i)
		}
		out[i], v = v[:n], v[n:]
	}
	if v != "" {
		return 0, errors.New("bad stored value: trailing bytes")
	}
	return len(out), nil
}

// Indexes into an encoded session's fields, in the scripts' order.
const (
	fID = iota
	fUserID
	fApp
	fFamily
	fAppID
	fOpenID
	fUnionID
	fAccessHash
	fAccessExpiresAt
	fRefreshHash
	fRefreshExpiresAt
	fCreatedAt
	fExpiresAt
	fLastUsedAt
	fRevokedAt
	fDecryptFailures
	fOrigin // values encoded before it came have only the fields above
	nFields
)

// sessionMark starts an encoded session whose hashes are bytes; values
// without it are earlier versions', with the hashes in hex.
const sessionMark = '*'

// decodeSession decodes the session the scripts' encode produced: a
// sessionMark and 17 fields, or as earlier versions wrote it, the hashes
// in hex, 17 fields, or 16 before the origin was added (origin "").
func decodeSession(op string, v string) (store.Session, error) {
	var f [nFields]string
	hexed := v == "" || v[0] != sessionMark
	if !hexed {
		v = v[1:]
	}
	n, err := splitFields(v, f[:])
	if err == nil && n != nFields && (!hexed || n != fOrigin) {
		err = fmt.Errorf("bad stored value: %d fields", n)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("redis: %s: %w", op, err)
	}
	sess := store.Session{
		ID:      f[fID],
		UserID:  f[fUserID],
		App:     f[fApp],
		Family:  platform.Family(f[fFamily]),
		AppID:   f[fAppID],
		OpenID:  f[fOpenID],
		UnionID: f[fUnionID],
		Origin:  f[fOrigin],
	}
	// Both hashes in one allocation, each capped so that appending to one
	// cannot overwrite the other.
	ah, rh := f[fAccessHash], f[fRefreshHash]
	var buf []byte
	na := len(ah)
	if hexed {
		if len(ah)%2 != 0 || len(rh)%2 != 0 {
			return store.Session{}, fmt.Errorf("redis: %s: bad stored hash", op)
		}
		buf = make([]byte, (len(ah)+len(rh))/2)
		na = len(ah) / 2
		if !unhex(buf[:na], ah) || !unhex(buf[na:], rh) {
			return store.Session{}, fmt.Errorf("redis: %s: bad stored hash", op)
		}
	} else {
		buf = make([]byte, 0, len(ah)+len(rh))
		buf = append(append(buf, ah...), rh...)
	}
	if na > 0 {
		sess.AccessHash = buf[:na:na]
	}
	if len(buf) > na {
		sess.RefreshHash = buf[na:]
	}
	for _, t := range []struct {
		dst *time.Time
		i   int
	}{
		{&sess.AccessExpiresAt, fAccessExpiresAt},
		{&sess.RefreshExpiresAt, fRefreshExpiresAt},
		{&sess.CreatedAt, fCreatedAt},
		{&sess.ExpiresAt, fExpiresAt},
		{&sess.LastUsedAt, fLastUsedAt},
		{&sess.RevokedAt, fRevokedAt},
	} {
		var err error
		if *t.dst, err = parseTime(f[t.i]); err != nil {
			return store.Session{}, fmt.Errorf("redis: %s: bad stored time %q", op, f[t.i])
		}
	}
	df, err := strconv.Atoi(f[fDecryptFailures])
	if err != nil {
		return store.Session{}, fmt.Errorf("redis: %s: bad stored count %q", op, f[fDecryptFailures])
	}
	sess.DecryptFailures = df
	return sess, nil
}

const hexDigits = "0123456789abcdef"

// hexKey returns prefix followed by h in lower-case hex, in one allocation.
func hexKey(prefix string, h []byte) string {
	var b strings.Builder
	b.Grow(len(prefix) + 2*len(h))
	b.WriteString(prefix)
	for _, c := range h {
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

// unhex decodes the lower-case hex s into dst, which is len(s)/2 long.
func unhex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// clone copies b; empty means "none" and becomes nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
