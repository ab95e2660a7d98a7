package httpapi_test

import (
	"encoding/json"
	"testing"
)

// tokenReply is the body of a 200 answer to POST /v1/login or /v1/token.
type tokenReply struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	User         replyUser `json:"user"`
}

// replyUser is the user of a token answer or of a session check (which has
// no "created").
type replyUser struct {
	ID      string `json:"id"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
	Created *bool  `json:"created"` // a pointer, to tell a missing "created" from false
}

// decode decodes r's body into v. A body that does not fit fails the test
// with the body, where a type assertion on r.body would panic.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.raw), v); err != nil {
		t.Fatalf("answer %d %s: %v", r.status, r.raw, err)
	}
}

// tokens decodes r as a token answer, which must carry both tokens and the
// user's id, openid and created.
func (r response) tokens(t *testing.T) tokenReply {
	t.Helper()
	var tok tokenReply
	r.decode(t, &tok)
	if r.status != 200 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.User.ID == "" || tok.User.OpenID == "" || tok.User.Created == nil {
		t.Fatalf("not a token answer: %d %s", r.status, r.raw)
	}
	return tok
}
