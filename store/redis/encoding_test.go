package redis

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// encodeFields encodes fields as the scripts and codeArgs do.
func encodeFields(fields ...string) string {
	var b []byte
	for _, f := range fields {
		b = appendField(b, f)
	}
	return string(b)
}

// TestDecodeOldSession: a session encoded before the origin was added (16
// fields, as the previous version wrote them under the access key) still
// decodes, with no origin; 17 fields carry it; other counts are refused.
func TestDecodeOldSession(t *testing.T) {
	ah, rh := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	old := []string{"s1", "u1", "main", "wechat", "wxA", "oA", "un", ah, "1741944413589793",
		rh, "1744529213589793", "1741937213589793", "", "1741937213589793", "", "2"}

	sess, err := decodeSession("test", encodeFields(old...))
	if err != nil {
		t.Fatalf("decode 16 fields: %v", err)
	}
	if sess.ID != "s1" || sess.Origin != "" || sess.DecryptFailures != 2 ||
		hex.EncodeToString(sess.AccessHash) != ah || hex.EncodeToString(sess.RefreshHash) != rh ||
		!sess.CreatedAt.Equal(time.UnixMicro(1741937213589793)) || !sess.ExpiresAt.IsZero() {
		t.Fatalf("decoded old session: %+v", sess)
	}

	sess, err = decodeSession("test", encodeFields(append(old, "s0")...))
	if err != nil || sess.Origin != "s0" || sess.ID != "s1" {
		t.Fatalf("decode 17 fields = %+v, %v; want origin s0", sess, err)
	}

	for _, n := range []int{15, 18} {
		f := append(append([]string(nil), old...), "s0", "x")[:n]
		if _, err := decodeSession("test", encodeFields(f...)); err == nil {
			t.Errorf("decode %d fields succeeded", n)
		}
	}
}

// TestDecodeOldCode: a code written before its session ID, replay window
// and count were added (6 fields) decodes with none of them.
func TestDecodeOldCode(t *testing.T) {
	h := []byte{1, 2, 3}
	old := []string{"1741937513589793", "main", "wechat", "wxA", "oA", hex.EncodeToString(h)}
	c, err := decodeCode("test", h, encodeFields(old...))
	if err != nil {
		t.Fatalf("decode 6 fields: %v", err)
	}
	if c.OpenID != "oA" || c.SessionID != "" || !c.ReplayUntil.IsZero() || c.Replays != 0 ||
		!c.ExpiresAt.Equal(time.UnixMicro(1741937513589793)) {
		t.Fatalf("decoded old code: %+v", c)
	}

	c, err = decodeCode("test", h, encodeFields(append(old, "s1", "1741937223589793", "2")...))
	if err != nil || c.SessionID != "s1" || c.Replays != 2 || !c.ReplayUntil.Equal(time.UnixMicro(1741937223589793)) {
		t.Fatalf("decode 9 fields = %+v, %v", c, err)
	}

	for _, f := range [][]string{old[:5], append(old, "s1"), append(old, "s1", "", "0", "x")} {
		if _, err := decodeCode("test", h, encodeFields(f...)); err == nil {
			t.Errorf("decode %d fields succeeded", len(f))
		}
	}
	if _, err := decodeCode("test", []byte{9}, encodeFields(old...)); err == nil {
		t.Error("decode under another hash succeeded")
	}
}

// encodeSession encodes sess as the scripts' encode does.
func encodeSession(sess store.Session) string {
	return "*" + encodeFields(sess.ID, sess.UserID, sess.App, string(sess.Family), sess.AppID, sess.OpenID,
		sess.UnionID, string(sess.AccessHash), us(sess.AccessExpiresAt), string(sess.RefreshHash),
		us(sess.RefreshExpiresAt), us(sess.CreatedAt), us(sess.ExpiresAt), us(sess.LastUsedAt),
		us(sess.RevokedAt), strconv.Itoa(sess.DecryptFailures), sess.Origin)
}

// TestDecodeSession: the encoding with the hashes as bytes decodes, hashes
// of any length and content included; with the mark, only 17 fields do.
func TestDecodeSession(t *testing.T) {
	at := time.UnixMicro(1741937213589793).UTC()
	want := store.Session{ID: "s1", UserID: "u1", App: "main", Family: "wechat", AppID: "wxA", OpenID: "oA",
		AccessHash: []byte("\x00*1:\xff"), AccessExpiresAt: at, RefreshHash: []byte{':'},
		RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at, LastUsedAt: at, DecryptFailures: 3, Origin: "s0"}
	v := encodeSession(want)
	got, err := decodeSession("test", v)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, want)
	}
	// The hashes are copies, apart from each other.
	got.AccessHash = append(got.AccessHash, 'x')
	if string(got.RefreshHash) != ":" {
		t.Fatal("appending to the access hash changed the refresh hash")
	}
	fields := []string{"s1", "u1", "main", "wechat", "wxA", "oA", "", "ab", "", "cd", "1", "", "", "", "", "0"}
	if _, err := decodeSession("test", "*"+encodeFields(fields...)); err == nil {
		t.Error("decode of a marked value of 16 fields succeeded")
	}
	if _, err := decodeSession("test", "*"+encodeFields(append(fields, "", "")...)); err == nil {
		t.Error("decode of a marked value of 18 fields succeeded")
	}
	// Unmarked: hashes in hex, so "ab" is one byte.
	got, err = decodeSession("test", encodeFields(fields...))
	if err != nil || !bytes.Equal(got.AccessHash, []byte{0xab}) {
		t.Fatalf("decode of an unmarked value = %+v, %v", got, err)
	}
}

// FuzzDecodeSession: decodeSession never panics, and what encodeSession
// makes of a session decodes to it.
func FuzzDecodeSession(f *testing.F) {
	f.Add("s1", "u1", "oA", []byte("access"), []byte("refresh"), int64(1741937213589793), 2, "s0")
	f.Add("", "", "", []byte{'*'}, []byte("1:"), int64(-1), 0, "")
	f.Fuzz(func(t *testing.T, id, uid, openID string, ah, rh []byte, at int64, df int, origin string) {
		if len(ah) == 0 || len(rh) == 0 || df < 0 {
			return
		}
		tm := time.UnixMicro(at).UTC()
		want := store.Session{ID: id, UserID: uid, OpenID: openID, AccessHash: ah, AccessExpiresAt: tm,
			RefreshHash: rh, RefreshExpiresAt: tm, CreatedAt: tm, ExpiresAt: tm, LastUsedAt: tm,
			RevokedAt: tm, DecryptFailures: df, Origin: origin}
		v := encodeSession(want)
		got, err := decodeSession("test", v)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", want, got, err)
		}
		// Anything else: an error or a session, never a panic.
		for _, w := range []string{id, v[:len(v)/2], v[1:], "*" + uid + string(ah)} {
			_, _ = decodeSession("test", w)
		}
	})
}
