package userdata

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// checkWatermark returns 1 if pt is a JSON object whose top-level
// "watermark" member is an object with a string "appid" equal to opt.AppID
// and a non-negative integer "timestamp" (recent, if opt.MaxAge > 0), and 0
// otherwise.
//
// json.Valid checks the whole plaintext; the members are then found by a
// small scanner over the (now known valid) bytes instead of json.Unmarshal,
// which costs several allocations and a second pass. The scanner fails
// closed wherever it could disagree with encoding/json: an object with an
// escaped key, a member that appears twice or also in another letter case
// (encoding/json matches field names case-insensitively and keeps the last
// one), and an appid written with escapes are all refused.
func checkWatermark(pt []byte, opt WeChatOptions) int {
	if len(pt) == 0 || pt[0] != '{' || !json.Valid(pt) {
		return 0
	}
	if opt.watermark == watermarkNone || opt.watermark == watermarkIfPresent && !hasMember(pt, "watermark") {
		return 1
	}
	wm, ok := member(pt, "watermark")
	if !ok || len(wm) == 0 || wm[0] != '{' {
		return 0
	}
	appid, ok1 := member(wm, "appid")
	tsRaw, ok2 := member(wm, "timestamp")
	if !ok1 || !ok2 || len(appid) < 2 || appid[0] != '"' || bytes.IndexByte(appid, '\\') >= 0 {
		return 0
	}
	ts, ok := parseUint(tsRaw)
	if !ok {
		return 0
	}
	good := equalHashed(appid[1:len(appid)-1], []byte(opt.AppID))
	if opt.MaxAge > 0 {
		now := time.Now
		if opt.Now != nil {
			now = opt.Now
		}
		// Sub saturates instead of overflowing, so absurd timestamps land
		// outside the window.
		age := now().Sub(time.Unix(ts, 0))
		if ts == 0 || age > opt.MaxAge || age < -maxFutureSkew {
			good = 0
		}
	}
	return good
}

// member returns the raw value of the member named key of the JSON object
// obj (which starts with '{' and is valid JSON), and whether it occurs
// exactly once, spelled exactly so, with no other key equal to it under
// case folding and no escaped key in obj. Every index is bounds-checked, so
// malformed input gives false, never a panic.
func member(obj []byte, key string) ([]byte, bool) {
	var val []byte
	found, exact := 0, false
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		ks := i
		i = skipString(obj, i)
		if i > len(obj) || i-ks < 2 {
			return nil, false
		}
		k := obj[ks+1 : i-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			return nil, false
		}
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		i = skipSpace(obj, i+1)
		vs := i
		i = skipValue(obj, i)
		if i > len(obj) || i <= vs {
			return nil, false
		}
		if bytes.EqualFold(k, []byte(key)) {
			found++
			exact = string(k) == key
			val = obj[vs:i]
		}
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return val, found == 1 && exact
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'
// (len(b)+1 if it is unterminated).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b) + 1
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b) + 1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b) + 1
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' &&
			b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}

// parseUint parses a JSON integer of at most 18 digits (no sign, fraction
// or exponent).
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasMember tells whether the JSON object obj (valid) has a member whose
// name is key in any letter case or spelling with escapes: such a member
// must then pass member's stricter reading.
func hasMember(obj []byte, key string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(obj, &top) != nil {
		return true // fail closed: the caller checks it strictly
	}
	for k := range top {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
