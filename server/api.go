package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/alipay"
	"github.com/mplogin/mplogin/platform/douyin"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
)

// wechatCalls is what *wechat.Client and *wechat.ComponentClient offer
// beyond login.
type wechatCalls interface {
	CheckSession(ctx context.Context, tok secret.String, openID string, key secret.String) (bool, error)
	ResetSessionKey(ctx context.Context, tok secret.String, openID string, key secret.String) (secret.String, error)
	PhoneNumber(ctx context.Context, tok secret.String, openID, code string) (*wechat.Phone, error)
}

// wechatWithToken makes a WeChat app's calls beyond login
// (session.PhoneResolver, session.SessionKeyChecker): each runs with the
// app's access token, refetched and retried once when WeChat rejects it.
type wechatWithToken struct {
	c      wechatCalls
	tokens accesstoken.Doer
	g      *guard
	flavor platform.Flavor
}

func (a wechatWithToken) PhoneNumber(ctx context.Context, openID, code string) (session.PhoneNumber, error) {
	var p *wechat.Phone
	// A rejected token is refused before WeChat looks at the code, so the
	// retry with a fresh token does not spend the code twice.
	err := a.g.withToken(ctx, a.tokens, a.flavor, "phone", func(ctx context.Context, tok secret.String) (err error) {
		p, err = a.c.PhoneNumber(ctx, tok, openID, code)
		return err
	})
	if err != nil {
		return session.PhoneNumber{}, err
	}
	return session.PhoneNumber{PhoneNumber: p.PhoneNumber, PurePhoneNumber: p.PurePhoneNumber, CountryCode: p.CountryCode}, nil
}

func (a wechatWithToken) CheckSessionKey(ctx context.Context, openID string, key secret.String) (bool, error) {
	var ok bool
	err := a.g.withToken(ctx, a.tokens, a.flavor, "checksession", func(ctx context.Context, tok secret.String) (err error) {
		ok, err = a.c.CheckSession(ctx, tok, openID, key)
		return err
	})
	return ok, err
}

func (a wechatWithToken) ResetSessionKey(ctx context.Context, openID string, key secret.String) (secret.String, error) {
	var fresh secret.String
	err := a.g.withToken(ctx, a.tokens, a.flavor, "resetsessionkey", func(ctx context.Context, tok secret.String) (err error) {
		fresh, err = a.c.ResetSessionKey(ctx, tok, openID, key)
		return err
	})
	if errors.Is(err, wechat.ErrSessionKeyInvalid) {
		return secret.String{}, fmt.Errorf("%w: %w", session.ErrSessionKeyRejected, err)
	}
	return fresh, err
}

// baiduCalls is what *baidu.Client and *baidu.TPClient offer beyond login.
type baiduCalls interface {
	UnionID(ctx context.Context, tok secret.String, openID string) (string, error)
}

// baiduWithToken makes a Baidu app's one call beyond login
// (session.UnionIDFetcher) with the app's access token.
type baiduWithToken struct {
	c      baiduCalls
	tokens accesstoken.Doer
	g      *guard
	flavor platform.Flavor
}

func (a baiduWithToken) UnionID(ctx context.Context, openID string) (string, error) {
	var u string
	err := a.g.withToken(ctx, a.tokens, a.flavor, "unionid", func(ctx context.Context, tok secret.String) (err error) {
		u, err = a.c.UnionID(ctx, tok, openID)
		return err
	})
	return u, err
}

// douyinWithToken resolves a Douyin app's phone codes
// (session.PhoneResolver) with the app's access token. Douyin trades a
// code without the user's openid: see session's linking rules.
type douyinWithToken struct {
	c      *douyin.Client
	tokens accesstoken.Doer
	g      *guard
	flavor platform.Flavor
}

func (a douyinWithToken) PhoneNumber(ctx context.Context, _, code string) (session.PhoneNumber, error) {
	var p *douyin.Phone
	err := a.g.withToken(ctx, a.tokens, a.flavor, "phone", func(ctx context.Context, tok secret.String) (err error) {
		p, err = a.c.PhoneNumber(ctx, tok, code)
		return err
	})
	if err != nil {
		return session.PhoneNumber{}, err
	}
	return session.PhoneNumber{PhoneNumber: p.PhoneNumber, PurePhoneNumber: p.PurePhoneNumber, CountryCode: p.CountryCode}, nil
}

// alipayPhones opens an Alipay app's my.getPhoneNumber answers
// (session.AlipayPhoneOpener).
type alipayPhones struct{ c *alipay.Client }

func (a alipayPhones) OpenPhone(p session.AlipayPhone) (string, error) {
	return a.c.DecryptPhone(alipay.PhoneResponse{Response: p.Response, Sign: p.Sign, SignType: p.SignType,
		EncryptType: p.EncryptType, Charset: p.Charset})
}

var (
	_ session.AlipayPhoneOpener = alipayPhones{}
	_ session.PhoneResolver     = douyinWithToken{}
	_ session.PhoneResolver     = wechatWithToken{}
	_ session.SessionKeyChecker = wechatWithToken{}
	_ session.UnionIDFetcher    = baiduWithToken{}
)
