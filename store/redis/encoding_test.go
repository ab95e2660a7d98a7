package redis

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
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
