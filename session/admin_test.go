package session_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/session"
)

func TestAdminFindAndDescribe(t *testing.T) {
	allWritePaths(t, testAdminFindAndDescribe, withApps(apiApps))
}

func testAdminFindAndDescribe(t *testing.T, f *fixture) {
	ctx := context.Background()
	tok := f.login(t, "wx", "alice", "0123456789abcdef")
	f.api.phones["pc-alice"] = "13812340000"
	if _, err := f.svc.Phone(ctx, tok.AccessToken.Reveal(), session.PhoneInput{Code: "pc-alice"}); err != nil {
		t.Fatal(err)
	}
	u, err := f.svc.User(ctx, tok.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != tok.User.ID || len(u.Identities) != 1 || u.Identities[0].OpenID != "openid-alice" || u.Identities[0].AppID != wxAppID ||
		u.Identities[0].Family != "wechat" || u.CreatedAt.IsZero() || u.LastLoginAt.IsZero() || u.Blocked {
		t.Fatalf("user %+v", u)
	}
	if u.Phone == nil || u.Phone.Masked != "138****0000" || u.Phone.Source != "platform" || u.Phone.App != "wx" {
		t.Fatalf("phone %+v", u.Phone)
	}
	byOpenID, err := f.svc.FindUser(ctx, session.UserQuery{App: "wx", OpenID: "openid-alice"})
	if err != nil || byOpenID.ID != u.ID {
		t.Fatalf("by openid: %+v %v", byOpenID, err)
	}
	for _, tt := range []struct {
		name string
		q    session.UserQuery
		want mplogin.Code
	}{
		{"unknown openid", session.UserQuery{App: "wx", OpenID: "nobody"}, mplogin.CodeNotFound},
		{"unknown app", session.UserQuery{App: "nope", OpenID: "openid-alice"}, mplogin.CodeUnknownApp},
		{"unknown unionid", session.UserQuery{UnionID: "nope", Family: "wechat"}, mplogin.CodeNotFound},
		{"nothing", session.UserQuery{}, mplogin.CodeInvalidRequest},
		{"both", session.UserQuery{App: "wx", OpenID: "openid-alice", UnionID: "u", Family: "wechat"}, mplogin.CodeInvalidRequest},
		{"openid alone", session.UserQuery{OpenID: "openid-alice"}, mplogin.CodeInvalidRequest},
	} {
		if _, err := f.svc.FindUser(ctx, tt.q); code(t, err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if _, err := f.svc.User(ctx, "nobody"); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("unknown user: %v", err)
	}
	ss, err := f.svc.UserSessions(ctx, u.ID)
	if err != nil || len(ss) != 1 || ss[0].App != "wx" || ss[0].ID == "" || ss[0].CreatedAt.IsZero() || ss[0].LastRefreshAt.IsZero() {
		t.Fatalf("sessions %+v %v", ss, err)
	}
	if _, err := f.svc.UserSessions(ctx, "nobody"); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("sessions of an unknown user: %v", err)
	}
	if strings.Contains(f.logs.String(), "13812340000") {
		t.Error("the log carries the phone number")
	}
}

func TestFindUserByUnionID(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		f.plat.unionID = "union-carol"
		tok := f.login(t, "shop", "carol", "")
		u, err := f.svc.FindUser(context.Background(), session.UserQuery{UnionID: "union-carol", Family: "wechat"})
		if err != nil || u.ID != tok.User.ID || u.Identities[0].UnionID != "union-carol" {
			t.Fatalf("%+v %v", u, err)
		}
	})
}

func TestMaskPhone(t *testing.T) {
	for _, tt := range []struct{ pure, full, want string }{
		{"13812340000", "+8613812340000", "138****0000"},
		{"", "13812340000", "138****0000"},
		{"1234567", "", "****"},
		{"", "", "****"},
		{"1381234０000", "", "****"},
	} {
		if got := session.MaskPhone(tt.pure, tt.full); got != tt.want {
			t.Errorf("MaskPhone(%q, %q) = %q, want %q", tt.pure, tt.full, got, tt.want)
		}
	}
}

func TestAdminRevokeBlock(t *testing.T) { allWritePaths(t, testAdminRevokeBlock) }

func testAdminRevokeBlock(t *testing.T, f *fixture) {
	ctx := context.Background()
	// One unionid: the two apps' identities are one user's.
	f.plat.unionID = "union-alice"
	a := f.login(t, "shop", "alice", "")
	b := f.login(t, "shop2", "alice", "")
	if b.User.ID != a.User.ID {
		t.Fatalf("two users: %s, %s", a.User.ID, b.User.ID)
	}
	n, err := f.svc.RevokeUser(ctx, a.User.ID)
	if err != nil || n != 2 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if _, err := f.svc.Check(ctx, a.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("check after revoke: %v", err)
	}
	if _, err := f.svc.RevokeUser(ctx, "nobody"); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("revoke unknown: %v", err)
	}
}

func TestAdminBlock(t *testing.T) { allWritePaths(t, testAdminBlock) }

func testAdminBlock(t *testing.T, f *fixture) {
	ctx := context.Background()
	a := f.login(t, "shop", "alice", "")
	a2 := f.login(t, "shop", "alice", "")
	n, err := f.svc.BlockUser(ctx, a.User.ID, "fraud report")
	if err != nil || n != 2 {
		t.Fatalf("block: %d %v", n, err)
	}
	for _, tok := range []*session.Tokens{a, a2} {
		if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
			t.Fatalf("check after block: %v", err)
		}
		if _, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("refresh after block: %v", err)
		}
	}
	u, err := f.svc.User(ctx, a.User.ID)
	if err != nil || !u.Blocked || u.BlockedReason != "fraud report" || u.BlockedAt.IsZero() {
		t.Fatalf("blocked user: %+v %v", u, err)
	}
	// A login of the blocked user is refused, and leaves no usable session.
	if _, err := f.svc.Login(ctx, "shop", "alice.blocked"); code(t, err) != mplogin.CodeUserBlocked {
		t.Fatalf("login of a blocked user: %v", err)
	}
	if ss, err := f.svc.UserSessions(ctx, a.User.ID); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after a refused login: %+v %v", ss, err)
	}
	// A repeat of that code is refused too.
	if _, err := f.svc.Login(ctx, "shop", "alice.blocked"); code(t, err) == "" {
		t.Fatal("a repeat of a blocked login's code got a session")
	}
	if ss, _ := f.svc.UserSessions(ctx, a.User.ID); len(ss) != 0 {
		t.Fatalf("sessions after a refused repeat: %+v", ss)
	}
	if _, err := f.svc.BlockUser(ctx, a.User.ID, strings.Repeat("x", session.MaxBlockReason+1)); code(t, err) != mplogin.CodeInvalidRequest {
		t.Errorf("long reason: %v", err)
	}
	if _, err := f.svc.BlockUser(ctx, "nobody", ""); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("block unknown: %v", err)
	}
	if err := f.svc.UnblockUser(ctx, a.User.ID); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.svc.User(ctx, a.User.ID); u.Blocked || u.BlockedReason != "" {
		t.Fatalf("unblocked: %+v", u)
	}
	again := f.login(t, "shop", "alice", "")
	if again.User.ID != a.User.ID || again.User.Created {
		t.Fatalf("login after unblock: %+v", again.User)
	}
	if err := f.svc.UnblockUser(ctx, "nobody"); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("unblock unknown: %v", err)
	}
}

func TestAdminEraseMerge(t *testing.T) {
	allWritePaths(t, testAdminEraseMerge, withApps(apiApps))
}

func testAdminEraseMerge(t *testing.T, f *fixture) {
	ctx := context.Background()
	a := f.login(t, "wx", "alice", "0123456789abcdef")
	b := f.login(t, "bare", "bobby", "0123456789abcdef")
	f.api.phones["pc-bob"] = "13900001111"
	// "bare" has no phone calls: bind bob's number through "wx".
	bw := f.login(t, "wx", "bobwx", "0123456789abcdef")
	if _, err := f.svc.Phone(ctx, bw.AccessToken.Reveal(), session.PhoneInput{Code: "pc-bob"}); err != nil {
		t.Fatal(err)
	}
	// Merge bobwx (with a phone) into alice (none): the number follows,
	// readable under alice.
	if err := f.svc.MergeUsers(ctx, a.User.ID, bw.User.ID); err != nil {
		t.Fatal(err)
	}
	u, err := f.svc.User(ctx, a.User.ID)
	if err != nil || len(u.Identities) != 2 || u.Phone == nil || u.Phone.Masked != "139****1111" {
		t.Fatalf("merged: %+v %v", u, err)
	}
	if found, err := f.svc.FindUser(ctx, session.UserQuery{App: "wx", OpenID: "openid-bobwx"}); err != nil || found.ID != a.User.ID {
		t.Fatalf("from's identity after the merge: %+v %v", found, err)
	}
	if info, err := f.svc.Check(ctx, bw.AccessToken.Reveal()); err != nil || info.User.ID != a.User.ID {
		t.Fatalf("from's session after the merge: %+v %v", info, err)
	}
	if _, err := f.svc.User(ctx, bw.User.ID); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("from after the merge: %v", err)
	}
	for _, tt := range []struct {
		into, from string
		want       mplogin.Code
	}{{a.User.ID, a.User.ID, mplogin.CodeInvalidRequest}, {a.User.ID, "nobody", mplogin.CodeNotFound}, {"nobody", b.User.ID, mplogin.CodeNotFound}} {
		if err := f.svc.MergeUsers(ctx, tt.into, tt.from); code(t, err) != tt.want {
			t.Errorf("merge %s <- %s: %v, want %s", tt.into, tt.from, err, tt.want)
		}
	}

	if err := f.svc.EraseUser(ctx, a.User.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []*session.Tokens{a, bw} {
		if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
			t.Fatalf("check after erase: %v", err)
		}
	}
	if _, err := f.svc.User(ctx, a.User.ID); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("erased user: %v", err)
	}
	if err := f.svc.EraseUser(ctx, a.User.ID); code(t, err) != mplogin.CodeNotFound {
		t.Errorf("erase twice: %v", err)
	}
	fresh := f.login(t, "wx", "alice", "0123456789abcdef")
	if !fresh.User.Created || fresh.User.ID == a.User.ID {
		t.Fatalf("login after erase: %+v", fresh.User)
	}
	if strings.Contains(f.logs.String(), "13900001111") {
		t.Error("the log carries the phone number")
	}
}
