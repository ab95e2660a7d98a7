package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/mplogin/mplogin/accesstoken"
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

// wechatAPI is session.API for a WeChat app: each call runs with the app's
// access token, refetched and retried once when WeChat rejects it.
type wechatAPI struct {
	c        wechatCalls
	tokens   accesstoken.Doer
	g        *guard
	platform string
}

func (a wechatAPI) PhoneNumber(ctx context.Context, openID, code string) (session.PhoneNumber, error) {
	var p *wechat.Phone
	// A rejected token is refused before WeChat looks at the code, so the
	// retry with a fresh token does not spend the code twice.
	err := a.g.withToken(ctx, a.tokens, a.platform, "phone", func(ctx context.Context, tok secret.String) (err error) {
		p, err = a.c.PhoneNumber(ctx, tok, openID, code)
		return err
	})
	if err != nil {
		return session.PhoneNumber{}, err
	}
	return session.PhoneNumber{PhoneNumber: p.PhoneNumber, PurePhoneNumber: p.PurePhoneNumber, CountryCode: p.CountryCode}, nil
}

func (a wechatAPI) CheckSessionKey(ctx context.Context, openID string, key secret.String) (bool, error) {
	var ok bool
	err := a.g.withToken(ctx, a.tokens, a.platform, "checksession", func(ctx context.Context, tok secret.String) (err error) {
		ok, err = a.c.CheckSession(ctx, tok, openID, key)
		return err
	})
	return ok, err
}

func (a wechatAPI) ResetSessionKey(ctx context.Context, openID string, key secret.String) (secret.String, error) {
	var fresh secret.String
	err := a.g.withToken(ctx, a.tokens, a.platform, "resetsessionkey", func(ctx context.Context, tok secret.String) (err error) {
		fresh, err = a.c.ResetSessionKey(ctx, tok, openID, key)
		return err
	})
	if errors.Is(err, wechat.ErrSessionKeyInvalid) {
		return secret.String{}, fmt.Errorf("%w: %w", session.ErrSessionKeyRejected, err)
	}
	return fresh, err
}

func (wechatAPI) UnionID(context.Context, string) (string, error) {
	// WeChat gives the unionid with the login, or not at all.
	return "", session.ErrNotSupported
}

// baiduCalls is what *baidu.Client and *baidu.TPClient offer beyond login.
type baiduCalls interface {
	UnionID(ctx context.Context, tok secret.String, openID string) (string, error)
}

// baiduAPI is session.API for a Baidu app: only unionids.
type baiduAPI struct {
	c        baiduCalls
	tokens   accesstoken.Doer
	g        *guard
	platform string
}

func (baiduAPI) PhoneNumber(context.Context, string, string) (session.PhoneNumber, error) {
	return session.PhoneNumber{}, session.ErrNotSupported
}

func (baiduAPI) CheckSessionKey(context.Context, string, secret.String) (bool, error) {
	return false, session.ErrNotSupported
}

func (baiduAPI) ResetSessionKey(context.Context, string, secret.String) (secret.String, error) {
	return secret.String{}, session.ErrNotSupported
}

func (a baiduAPI) UnionID(ctx context.Context, openID string) (string, error) {
	var u string
	err := a.g.withToken(ctx, a.tokens, a.platform, "unionid", func(ctx context.Context, tok secret.String) (err error) {
		u, err = a.c.UnionID(ctx, tok, openID)
		return err
	})
	return u, err
}
