// Command mplogin is the mini-program login service (serve), a stand-in for
// the platforms (emulate), and both together on an embedded store (demo).
package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/signing"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage:
  mplogin serve --config FILE
  mplogin emulate [--listen ADDR] [--config FILE] [--open-codes]
  mplogin demo [--listen ADDR] [--emulator-listen ADDR] [--data DIR]
  mplogin reset-session-key --config FILE --app NAME --openid OPENID
  mplogin keys rotate --config FILE [--revoke-current]
` + usersUsage + `  mplogin version
`

// run is the whole program, apart from process signals and exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr, getenv)
	case "emulate":
		err = runEmulate(ctx, args[1:], stdout, stderr, getenv)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "reset-session-key":
		err = runResetSessionKey(ctx, args[1:], stdout, stderr, getenv)
	case "keys":
		if len(args) < 2 || args[1] != "rotate" {
			fmt.Fprintf(stderr, "mplogin: keys takes the subcommand rotate\n%s", usage)
			return 2
		}
		err = runKeysRotate(ctx, args[2:], stdout, stderr, getenv)
	case "users":
		err = runUsers(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "mplogin", buildVersion())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mplogin: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "mplogin:", err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mplogin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func runServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) (string, bool)) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve: --config is required")
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	procs := setProcs(cfg.Store, getenv)
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving", "addr", ln.Addr().String(), "version", buildVersion(), "apps", len(cfg.Apps), "procs", procs)
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

// setProcs sets the Go processors (GOMAXPROCS) of a service on the store
// dsn names, and returns them. GOMAXPROCS, when set, decides. Otherwise a
// service on SQLite runs twice the runtime's default, one per CPU: every
// write goes through one goroutine, which needs a processor again after
// each of its system calls, a dozen or more per login. With one processor
// per CPU it waits behind request handlers for one, and the logins' tail
// grows with the load; with more processors than CPUs, the kernel shares
// the CPUs among their threads, and tends to run first a thread that,
// like the writer's, sleeps often.
func setProcs(dsn string, getenv func(string) (string, bool)) int {
	if _, set := getenv("GOMAXPROCS"); set {
		return runtime.GOMAXPROCS(0)
	}
	runtime.SetDefaultGOMAXPROCS()
	n := runtime.GOMAXPROCS(0)
	if kind, _, err := config.StoreKind(dsn); err == nil && kind == "sqlite" {
		n *= 2
		runtime.GOMAXPROCS(n)
	}
	return n
}

// runResetSessionKey is the operator's call after a suspected leak of a
// user's session key: the platform issues a new one, which replaces the old
// in the store (the old one still opens data for the grace period), and the
// identity's sessions end, since a leaked key means a compromised login.
func runResetSessionKey(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) error {
	fs := newFlags("reset-session-key", stderr)
	path := fs.String("config", "", "configuration file (YAML) of the service")
	app := fs.String("app", "", "the configured app's name")
	openID := fs.String("openid", "", "the user's openid in that app")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" || *app == "" || *openID == "" {
		return errors.New("reset-session-key: --config, --app and --openid are required")
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: newLogger(stderr, cfg.Log)})
	if err != nil {
		return err
	}
	defer srv.Close()
	n, err := srv.Sessions().ResetSessionKey(ctx, *app, *openID)
	if err != nil {
		return fmt.Errorf("reset-session-key: %w", err)
	}
	fmt.Fprintf(stdout, "the session key of %s in %s was reset and its %d session(s) in that app ended\n", *openID, *app, n)
	return nil
}

// runKeysRotate is the operator's rotation of the JWT signing keys, on the
// store itself: the next key signs at once, and with --revoke-current the
// key that signed until now leaves the JWK set (after a suspected leak).
// Running services pick the change up when they reload the set.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) error {
	fs := newFlags("keys rotate", stderr)
	path := fs.String("config", "", "configuration file (YAML) of the service")
	revoke := fs.Bool("revoke-current", false, "remove the current key from the JWK set at once: the JWTs it signed stop verifying")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("keys rotate: --config is required")
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	keys, err := keyring.New(nil, cfg.MasterKey, cfg.OldMasterKeys...)
	if err != nil {
		return fmt.Errorf("master_key: %w", err)
	}
	// The keys live in the durable store, beside any Redis for sessions.
	st, err := server.OpenStore(ctx, cfg.Store, log)
	if err != nil {
		return err
	}
	defer st.Close()
	sm, err := signing.New(signing.Config{Store: st, Keys: keys, Algorithm: jose.SignatureAlgorithm(cfg.SigningAlgorithm()),
		Rotation: cfg.SigningKeyRotation, MaxTokenTTL: cfg.MaxJWTTTL(), Logger: log})
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	res, err := sm.Rotate(ctx, *revoke)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(stdout, "current key: %s (signs now)\n", res.Current.KID)
	fmt.Fprintf(stdout, "next key: %s (signs from %s)\n", res.Next.KID, res.Next.SignFrom.UTC().Format(time.RFC3339))
	if len(res.Removed) == 0 {
		fmt.Fprintln(stdout, "removed from the JWK set: none")
	}
	for _, kid := range res.Removed {
		fmt.Fprintf(stdout, "removed from the JWK set: %s (JWTs it signed no longer verify)\n", kid)
	}
	fmt.Fprintf(stdout, "running services sign with the new key within %s, when they reload the keys\n", signing.ReloadEvery)
	return nil
}

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) error {
	fs := newFlags("emulate", stderr)
	listen := fs.String("listen", "127.0.0.1:9300", "address to listen on")
	path := fs.String("config", "", "accept only the credentials of this mplogin configuration's apps")
	open := fs.Bool("open-codes", false, "accept never-minted codes of the form <user>.<anything> once (load tests)")
	alipayKey := fs.String("alipay-key", "", "PEM file of the Alipay gateway's signing key (made if missing); without it, a new key each start")
	if err := parse(fs, args); err != nil {
		return err
	}
	var apps []emulator.App
	if *path != "" {
		cfg, err := config.Load(*path, getenv)
		if err != nil {
			return err
		}
		apps = emulatorApps(cfg.Apps)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ecfg := emulator.Config{Apps: apps, OpenCodes: *open, Logger: log}
	if *alipayKey != "" {
		k, err := keyFile(*alipayKey)
		if err != nil {
			return err
		}
		if ecfg.AlipayKey, err = config.ParseRSAPrivateKey(k); err != nil {
			return fmt.Errorf("%s: %w", *alipayKey, err)
		}
	}
	em := emulator.New(ecfg)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hello := fmt.Sprintf("mplogin emulator on http://%s (credentials checked: %v, open codes: %v)\n", ln.Addr(), len(apps) > 0, *open)
	if hasAlipay(apps) || *alipayKey != "" {
		// Alipay apps verify the gateway's answers with it: their alipay_public_key.
		if der, err := x509.MarshalPKIXPublicKey(em.AlipayPublicKey()); err == nil {
			hello += "alipay gateway public key: " + base64.StdEncoding.EncodeToString(der) + "\n"
		}
	}
	fmt.Fprint(stdout, hello) // one write: a reader of the first line gets it all
	return server.ServeHTTP(ctx, emulatorServer(em, log), ln, 5*time.Second)
}

func hasAlipay(apps []emulator.App) bool {
	for _, a := range apps {
		if a.Family == platform.FamilyAlipay {
			return true
		}
	}
	return false
}

// emulatorServer wraps the emulator in a server with every timeout set.
func emulatorServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Faults may hold an answer back on purpose (latency, slow body).
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// emulatorApps turns configured apps into the emulator's: their
// credentials, and a third-party token when it is a static value.
func emulatorApps(apps []config.App) []emulator.App {
	var out []emulator.App
	for _, a := range apps {
		e := emulator.App{Family: a.Family(), AppID: a.ID()}
		switch a.Flavor {
		case platform.FlavorWeChat:
			e.Secret = a.Secret.Reveal()
		case platform.FlavorWeChatComponent:
			e.Secret = a.Secret.Reveal()
			e.ComponentAppID = a.ComponentAppID
			if a.ComponentToken != nil {
				e.ThirdPartyToken = a.ComponentToken.Value.Reveal()
			}
		case platform.FlavorBaidu, platform.FlavorBaiduLegacy:
			e.Secret = a.AppSecret.Reveal()
		case platform.FlavorDouyin:
			e.Secret = a.Secret.Reveal()
			// The emulator encrypts phone codes' answers for the app's key.
			if k, err := config.ParseRSAPrivateKey(a.RSAPrivateKey); err == nil {
				e.RSAPublicKey = &k.PublicKey
			}
		case platform.FlavorAlipay:
			// The gateway checks the app's signatures with its public key,
			// and encrypts phone numbers with its AES key.
			if k, err := config.ParseRSAPrivateKey(a.PrivateKey); err == nil {
				e.AlipayPublicKey = &k.PublicKey
			}
			if b, err := base64.StdEncoding.DecodeString(a.AESKey.Reveal()); err == nil && len(b) == 16 {
				e.AESKey = b
			}
		case platform.FlavorQQ:
			e.Secret = a.Secret.Reveal()
		case platform.FlavorKuaishou:
			e.Secret = a.AppSecret.Reveal()
		case platform.FlavorBaiduTP:
			e.Secret = a.AppSecret.Reveal()
			if a.AuthorizerToken != nil {
				e.ThirdPartyToken = a.AuthorizerToken.Value.Reveal()
			}
		}
		out = append(out, e)
	}
	return out
}
