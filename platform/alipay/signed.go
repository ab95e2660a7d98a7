package alipay

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of objects and arrays the scanner accepts,
// the outermost object counting as 1. Alipay's answers are two or three
// levels deep; the bound keeps a hostile body from costing a deep
// recursion.
const maxDepth = 64

// Names of the top-level members of a gateway answer.
const (
	nodeError  = "error_response"
	nameSign   = "sign"
	nameCertSN = "alipay_cert_sn"
)

// Reasons an answer cannot be used, told apart so that the parser can map
// each to a kind.
var (
	// errSyntax: not exactly one JSON object (truncated, trailing data,
	// invalid JSON, too deep).
	errSyntax = errors.New("answer is not one JSON object")
	// errDuplicate: a member name appears twice in one object, so readers
	// could disagree on which value counts.
	errDuplicate = errors.New("a member appears twice")
	// errNoNode: neither the method's node nor error_response.
	errNoNode = errors.New("answer without a response node")
	// errNodeShape: the node is not an object.
	errNodeShape = errors.New("response node is not an object")
	// errNoSign: no sign, or one that is not a base64 string.
	errNoSign = errors.New("answer without a usable sign")
)

// member is one name/value pair of a JSON object: the name decoded, the
// value as the exact bytes it was sent as.
type member struct {
	name string
	raw  []byte
}

// objectMembers parses b, which must be exactly one JSON object with
// optional surrounding whitespace, and returns its members in order. It
// refuses anything else (errSyntax) and an object, at its own level, that
// names a member twice (errDuplicate). Nested values are checked for
// syntax, not duplicates: they are returned as raw bytes for a later call.
func objectMembers(b []byte) ([]member, error) {
	s := scanner{b: b}
	s.skipSpace()
	if !s.consume('{') {
		return nil, errSyntax
	}
	var out []member
	seen := make(map[string]struct{})
	s.skipSpace()
	if s.consume('}') {
		return s.end(out)
	}
	for {
		s.skipSpace()
		start := s.i
		if !s.str() {
			return nil, errSyntax
		}
		name, ok := decodeName(b[start:s.i])
		if !ok {
			return nil, errSyntax
		}
		s.skipSpace()
		if !s.consume(':') {
			return nil, errSyntax
		}
		s.skipSpace()
		vstart := s.i
		if !s.value(2) { // the object itself is depth 1
			return nil, errSyntax
		}
		if _, dup := seen[name]; dup {
			return nil, errDuplicate
		}
		seen[name] = struct{}{}
		out = append(out, member{name: name, raw: b[vstart:s.i:s.i]})
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return s.end(out)
		}
		return nil, errSyntax
	}
}

// decodeName decodes a member name given as its raw JSON string. Names
// with escapes are decoded as encoding/json would, so that
// "sign" spelled with a \u escape is still "sign" (and a duplicate).
func decodeName(raw []byte) (string, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return "", false
	}
	return name, true
}

// scanner checks JSON syntax over b from i, strictly (RFC 8259 grammar),
// without building values.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) end(out []member) ([]member, error) {
	s.skipSpace()
	if s.i != len(s.b) {
		return nil, errSyntax
	}
	return out, nil
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value skips one value at nesting depth.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.container('}', depth, true)
	case c == '[':
		return s.container(']', depth, false)
	case c == '"':
		return s.str()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return false
}

// container skips an object (keyed) or an array whose closing byte is
// closer.
func (s *scanner) container(closer byte, depth int, keyed bool) bool {
	s.i++ // the opener
	s.skipSpace()
	if s.consume(closer) {
		return true
	}
	for {
		s.skipSpace()
		if keyed {
			if !s.str() {
				return false
			}
			s.skipSpace()
			if !s.consume(':') {
				return false
			}
			s.skipSpace()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		return s.consume(closer)
	}
}

// str skips a string: no raw control characters, only JSON's escapes.
// Bytes over 0x7F pass as they are (encoding/json does the same).
func (s *scanner) str() bool {
	if !s.consume('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.consume('.') && !s.digits() {
		return false
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// signedAnswer is a gateway answer taken apart: which node it carries,
// the exact bytes of that node's value (what Alipay signed), the
// signature, and the certificate serial number when Alipay sent one.
type signedAnswer struct {
	node    string
	content []byte
	sign    []byte
	certSN  string
}

// extractSigned takes apart a gateway answer to the method whose node is
// nodeName ("alipay_system_oauth_token_response"). The signed content is
// the value of that node or, only when it is absent, of error_response,
// byte for byte as received: brace-matched, whitespace inside, escapes
// such as \/ left as they are. Members other than the node, sign and
// alipay_cert_sn are ignored: nothing outside the node is signed.
//
// The body must be exactly one JSON object with no name given twice at
// its top level; the node must be an object; sign must be a string of
// standard base64. Nothing here checks the signature: see verify.
func extractSigned(body []byte, nodeName string) (*signedAnswer, error) {
	members, err := objectMembers(body)
	if err != nil {
		return nil, err
	}
	var node, errNode, sign, certSN []byte
	for _, m := range members {
		switch m.name {
		case nodeName:
			node = m.raw
		case nodeError:
			errNode = m.raw
		case nameSign:
			sign = m.raw
		case nameCertSN:
			certSN = m.raw
		}
	}
	a := &signedAnswer{node: nodeName, content: node}
	if node == nil {
		a.node, a.content = nodeError, errNode
	}
	if a.content == nil {
		return nil, errNoNode
	}
	if a.content[0] != '{' {
		return nil, errNodeShape
	}
	var sig string
	if sign == nil || json.Unmarshal(sign, &sig) != nil || sig == "" {
		return a, errNoSign
	}
	if a.sign, err = base64.StdEncoding.DecodeString(sig); err != nil {
		return a, errNoSign
	}
	if certSN != nil {
		// Only kept for logs; public-key mode does not use it.
		_ = json.Unmarshal(certSN, &a.certSN)
	}
	return a, nil
}

// verify checks a SHA256withRSA (PKCS #1 v1.5) signature over content.
func verify(pub *rsa.PublicKey, content, sig []byte) error {
	h := sha256.Sum256(content)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}
