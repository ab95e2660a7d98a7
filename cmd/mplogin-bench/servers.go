package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/server"
)

// The hidden subcommands: the harness starts itself with one of them, so
// that what it measures runs in a process of its own, like the service.
const (
	cmdBareServer    = "bare-server"
	cmdServeProfiled = "serve-profiled"
)

// bareBody is about the size and shape of a GET /v1/session answer.
var bareBody = []byte(`{"active":true,"app":"bench-wechat","user":{"id":"0123456789abcdef0123456789abcdef","openid":"oAbCdEfGhIjKlMnOpQrStUvWxYz0","unionid":"uAbCdEfGhIjKlMnOpQrStUvWxYz0"},"expires_in":7199}` + "\n")

// bareHandler is the ceiling: net/http and nothing else, answering every
// request with the same small JSON body.
func bareHandler() http.Handler {
	length := strconv.Itoa(len(bareBody))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		_, _ = w.Write(bareBody)
	})
}

// bareServerMain serves bareHandler on --listen, prints the address it got
// on stdout, and stops on SIGTERM or SIGINT.
func bareServerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmdBareServer, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "bare-server:", err)
		return 1
	}
	fmt.Fprintln(stdout, ln.Addr().String())
	srv := &http.Server{
		Handler:           bareHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	if err := server.ServeHTTP(ctx, srv, ln, 5*time.Second); err != nil {
		fmt.Fprintln(stderr, "bare-server:", err)
		return 1
	}
	return 0
}

// serveProfiledMain is `mplogin serve` built into the harness with a CPU
// profile around it: the same server package, configuration and logger as
// cmd/mplogin, for finding where the time goes. The reported numbers come
// from the real binary.
func serveProfiledMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmdServeProfiled, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	profile := fs.String("cpuprofile", "", "write a CPU profile here")
	traceOut := fs.String("trace", "", "write an execution trace here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := serveProfiled(*path, *profile, *traceOut, stderr); err != nil {
		fmt.Fprintln(stderr, "serve-profiled:", err)
		return 1
	}
	return 0
}

func serveProfiled(path, profile, traceOut string, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	var log *slog.Logger
	if cfg.Log.Format == "text" {
		log = slog.New(slog.NewTextHandler(stderr, opts))
	} else {
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, f.Close()) }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if traceOut != "" {
		f, err := os.Create(traceOut)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, f.Close()) }()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	return srv.Serve(ctx, ln)
}
