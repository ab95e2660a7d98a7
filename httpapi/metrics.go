package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/metrics"
)

// NewMetrics returns the handler of a listener that serves /metrics alone
// (the service's metrics.listen): GET /metrics is m in Prometheus text;
// another method is 405, any other path 404 not_found, in the API's error
// shape. log (nil = discard) gets the request lines of those errors.
func NewMetrics(m *metrics.Metrics, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{log: slog.New(LogHandler(log.Handler())), timeout: 15 * time.Second, now: time.Now,
		mux: http.NewServeMux(), allow: make(map[string]string), v6bits: DefaultIPv6Prefix}
	h.mux.Handle("GET /metrics", m.Handler())
	h.allowMethod("GET /metrics")
	h.mux.HandleFunc("/", h.fallback(mplogin.CodeNotFound))
	return h
}
