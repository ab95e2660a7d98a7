package httpapi

import (
	"context"
	"log/slog"
)

// LogHandler wraps h so that every record logged with the context of a
// request this package serves carries the request's id and client address:
// the session service's security events (a replayed refresh token, a
// logout) can then be traced to the request and the client that caused
// them. Give it to the loggers of what the Handler calls; the Handler wraps
// its own. Wrapping twice adds nothing.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

// reqKey keys a request's reqLog in its context.
type reqKey struct{}

type reqLog struct{ id, client string }

func withReqLog(ctx context.Context, id, client string) context.Context {
	return context.WithValue(ctx, reqKey{}, reqLog{id, client})
}

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if v, ok := ctx.Value(reqKey{}).(reqLog); ok {
		r = r.Clone() // the caller's record is not ours to add to
		r.AddAttrs(slog.String("request_id", v.id), slog.String("client", v.client))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
