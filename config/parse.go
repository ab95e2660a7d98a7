package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads: a configuration is a few KiB.
const maxFileSize = 1 << 20

// Load reads the file at path and parses it with Parse. A nil getenv means
// os.LookupEnv. A file that cannot be read gives the os error wrapped
// (errors.Is(err, fs.ErrNotExist) works); every other error is an *Error.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{Msg: fmt.Sprintf("%s is larger than 1 MiB", path)}
	}
	return Parse(data, getenv)
}

// Parse parses and validates one YAML document (see the package
// documentation for its keys). ${NAME} in a value is replaced by the
// environment variable NAME, looked up with getenv (nil means
// os.LookupEnv). Every error is an *Error, one line long, that never
// contains a configured value other than an app name.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "the file is empty"}
		}
		return nil, syntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, &Error{Line: next.Line, Msg: "a second YAML document; the configuration must be one document"}
	}

	c := Default()
	d := decoder{getenv: getenv}
	if err := d.config(&doc, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// syntaxError turns the YAML parser's "yaml: line N: problem" into an
// *Error. The problems are fixed phrases; at most they quote an anchor's
// name, never a value.
func syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, tail, ok := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); ok && err == nil {
			e.Line, e.Msg = n, tail
			if parserProblem(tail) {
				e.Line++
			}
		}
	}
	e.Msg = "invalid YAML: " + e.Msg
	return e
}

// parserProblem reports whether msg is one of the problems of the YAML
// parser (not of its scanner). yaml v3 reports their line counting from 0
// (it adds 1 only for scanner errors), so Parse adds the 1 itself.
func parserProblem(msg string) bool {
	switch msg {
	case "did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"did not find expected '-' indicator",
		"did not find expected <document start>",
		"did not find expected <stream-start>",
		"did not find expected key",
		"did not find expected node content",
		"found duplicate %TAG directive",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

// decoder walks the YAML node tree into a Config. It expands ${NAME} in
// scalar values as it reads them, so that an expanded value is never parsed
// as YAML, and it checks every key itself: yaml's KnownFields does not apply
// to a yaml.Node, and this way every error can name its key path.
type decoder struct {
	getenv func(string) (string, bool)
}

// field is one key of a mapping and what to do with its value.
type field struct {
	key string
	set func(path string, v *yaml.Node) error
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

func kindError(path string, n *yaml.Node, want string) *Error {
	return errorf(path, "must be %s, not %s", want, describe(n))
}

// mapping decodes the mapping n with fields; keyPath names a key in errors.
// A null value counts as an empty mapping.
func (d *decoder) mapping(path string, n *yaml.Node, keyPath func(string) string, fields []field) error {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return kindError(path, n, "a mapping")
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return &Error{Line: n.Content[i].Line, Path: path, Msg: "a key must be a plain name, not " + describe(k)}
		}
		var f *field
		for j := range fields {
			if fields[j].key == k.Value {
				f = &fields[j]
				break
			}
		}
		if f == nil {
			return unknownKey(path, n.Content[i].Line, k, fields)
		}
		if first, dup := seen[k.Value]; dup {
			return &Error{Line: n.Content[i].Line, Path: keyPath(k.Value), Msg: fmt.Sprintf("given twice (first at line %d)", first)}
		}
		seen[k.Value] = n.Content[i].Line
		if err := f.set(keyPath(k.Value), v); err != nil {
			return err
		}
	}
	return nil
}

func unknownKey(path string, line int, k *yaml.Node, fields []field) *Error {
	if k.ShortTag() == "!!merge" {
		return &Error{Line: line, Path: path, Msg: "merge keys (<<) are not supported"}
	}
	name := k.Value
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	msg := fmt.Sprintf("unknown key %q", name)
	if s := suggest(k.Value, fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return &Error{Line: line, Path: path, Msg: msg}
}

// suggest returns the known key closest to an unknown one, if any is close.
func suggest(key string, fields []field) string {
	best, bestDist := "", 3
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, f := range fields {
		if norm(f.key) == norm(key) {
			return f.key
		}
		if dist := editDistance(key, f.key); dist < bestDist && dist < len(f.key)/2 {
			best, bestDist = f.key, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list decodes the sequence n item by item. A null value is an empty list.
func (d *decoder) list(path string, n *yaml.Node, item func(path string, v *yaml.Node) error) error {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return kindError(path, n, "a list")
	}
	for i, v := range n.Content {
		if err := item(fmt.Sprintf("%s[%d]", path, i), v); err != nil {
			return err
		}
	}
	return nil
}

// scalar returns the value of a scalar node with ${NAME} expanded. ok is
// false for a null or empty value: such a key counts as not given.
func (d *decoder) scalar(path string, n *yaml.Node) (v string, ok bool, err error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", false, kindError(path, n, "a single value")
	}
	switch n.ShortTag() {
	case "!!null":
		return "", false, nil
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	default:
		return "", false, errorf(path, "has an unsupported YAML tag")
	}
	v, err = expand(n.Value, d.getenv)
	if err != nil {
		return "", false, errorf(path, "%v", err)
	}
	return v, v != "", nil
}

func (d *decoder) str(dst *string) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if ok {
			*dst = v
		}
		return err
	}
}

func (d *decoder) flavor(dst *platform.Flavor) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if ok {
			*dst = platform.Flavor(v)
		}
		return err
	}
}

func (d *decoder) secretValue(dst *secret.String) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if ok {
			*dst = secret.New(v)
		}
		return err
	}
}

func (d *decoder) duration(dst *time.Duration, given *bool) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if err != nil || !ok {
			return err
		}
		t, err := time.ParseDuration(v)
		if err != nil {
			return errorf(path, "must be a duration such as 5s, 10m or 24h")
		}
		*dst = t
		if given != nil {
			*given = true
		}
		return nil
	}
}

// positiveDuration is duration for a key where 0 would mean nothing.
func (d *decoder) positiveDuration(dst *time.Duration) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		var v time.Duration
		if err := d.duration(&v, nil)(path, n); err != nil {
			return err
		}
		if v < 0 || (v == 0 && !isNull(resolve(n))) {
			return errorf(path, "must be more than 0")
		}
		*dst = v
		return nil
	}
}

// strList decodes a list of strings, or a single string as a list of one.
func (d *decoder) strList(dst *[]string) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		if r := resolve(n); r.Kind == yaml.ScalarNode {
			v, ok, err := d.scalar(path, n)
			if ok {
				*dst = []string{v}
			}
			return err
		}
		return d.list(path, n, func(path string, n *yaml.Node) error {
			v, ok, err := d.scalar(path, n)
			if err != nil {
				return err
			}
			if !ok {
				return errorf(path, "must not be empty")
			}
			*dst = append(*dst, v)
			return nil
		})
	}
}

func (d *decoder) boolean(dst *bool) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if err != nil || !ok {
			return err
		}
		switch v {
		case "true", "True", "TRUE":
			*dst = true
		case "false", "False", "FALSE":
			*dst = false
		default:
			return errorf(path, "must be true or false")
		}
		return nil
	}
}

func (d *decoder) number(dst *float64) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if err != nil || !ok {
			return err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return errorf(path, "must be a number, 0 or more")
		}
		*dst = f
		return nil
	}
}

func (d *decoder) count(dst *int) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if err != nil || !ok {
			return err
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i > 1_000_000 {
			return errorf(path, "must be a whole number from 0 to 1000000")
		}
		*dst = i
		return nil
	}
}

// routeLimit decodes one route's limits; perSession adds the session and
// session_burst keys, for the routes that act on a session.
func (d *decoder) routeLimit(r *RouteLimit, perSession bool) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		fields := []field{
			{"ip", d.number(&r.IP.Rate)},
			{"ip_burst", d.count(&r.IP.Burst)},
			{"app", d.number(&r.App.Rate)},
			{"app_burst", d.count(&r.App.Burst)},
		}
		if perSession {
			fields = append(fields, field{"session", d.number(&r.Session.Rate)}, field{"session_burst", d.count(&r.Session.Burst)})
		}
		return d.mapping(path, n, func(k string) string { return path + "." + k }, fields)
	}
}

// prefixLen decodes a prefix length, written 56 or /56.
func (d *decoder) prefixLen(dst *int) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		v, ok, err := d.scalar(path, n)
		if err != nil || !ok {
			return err
		}
		i, err := strconv.Atoi(strings.TrimPrefix(v, "/"))
		if err != nil {
			return errorf(path, "must be a prefix length such as 56 or /56")
		}
		*dst = i
		return nil
	}
}

func (d *decoder) config(doc *yaml.Node, c *Config) error {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if r := resolve(root); isNull(r) {
		return &Error{Msg: "the file is empty"}
	} else if r.Kind != yaml.MappingNode {
		return &Error{Line: r.Line, Msg: "the top level must be a mapping of keys such as listen, store and apps"}
	}
	top := func(k string) string { return k }
	sub := func(prefix string) func(string) string {
		return func(k string) string { return prefix + "." + k }
	}
	return d.mapping("", root, top, []field{
		{"listen", d.str(&c.Listen)},
		{"store", d.str(&c.Store)},
		{"sessions", d.str(&c.Sessions)},
		{"master_key", func(path string, n *yaml.Node) error {
			v, ok, err := d.scalar(path, n)
			if err != nil || !ok {
				return err
			}
			c.MasterKey, err = decodeKey(path, v)
			return err
		}},
		{"old_master_keys", func(path string, n *yaml.Node) error {
			return d.list(path, n, func(path string, n *yaml.Node) error {
				v, _, err := d.scalar(path, n)
				if err != nil {
					return err
				}
				k, err := decodeKey(path, v)
				c.OldMasterKeys = append(c.OldMasterKeys, k)
				return err
			})
		}},
		{"log", func(path string, n *yaml.Node) error {
			return d.mapping(path, n, sub(path), []field{
				{"level", func(path string, n *yaml.Node) error {
					v, ok, err := d.scalar(path, n)
					if err != nil || !ok {
						return err
					}
					switch strings.ToLower(v) {
					case "debug":
						c.Log.Level = slog.LevelDebug
					case "info":
						c.Log.Level = slog.LevelInfo
					case "warn":
						c.Log.Level = slog.LevelWarn
					case "error":
						c.Log.Level = slog.LevelError
					default:
						return errorf(path, "must be debug, info, warn or error")
					}
					return nil
				}},
				{"format", func(path string, n *yaml.Node) error {
					v, ok, err := d.scalar(path, n)
					if err != nil || !ok {
						return err
					}
					if v != "json" && v != "text" {
						return errorf(path, "must be json or text")
					}
					c.Log.Format = v
					return nil
				}},
			})
		}},
		{"http", func(path string, n *yaml.Node) error {
			return d.mapping(path, n, sub(path), []field{
				{"read_header_timeout", d.duration(&c.HTTP.ReadHeaderTimeout, nil)},
				{"read_timeout", d.duration(&c.HTTP.ReadTimeout, nil)},
				{"write_timeout", d.duration(&c.HTTP.WriteTimeout, nil)},
				{"idle_timeout", d.duration(&c.HTTP.IdleTimeout, nil)},
				{"shutdown_timeout", d.duration(&c.HTTP.ShutdownTimeout, nil)},
				{"max_connections", d.count(&c.HTTP.MaxConnections)},
				{"max_connections_per_ip", d.count(&c.HTTP.MaxConnectionsPerIP)},
				{"ipv6_prefix", d.prefixLen(&c.HTTP.IPv6Prefix)},
				{"trusted_proxies", func(path string, n *yaml.Node) error {
					return d.list(path, n, func(path string, n *yaml.Node) error {
						v, _, err := d.scalar(path, n)
						if err != nil {
							return err
						}
						p, err := parseProxy(v)
						if err != nil {
							return errorf(path, "must be an IP address or a CIDR such as 10.0.0.0/8")
						}
						c.HTTP.TrustedProxies = append(c.HTTP.TrustedProxies, p)
						return nil
					})
				}},
			})
		}},
		{"sessions_policy", func(path string, n *yaml.Node) error {
			return d.mapping(path, n, sub(path), []field{
				{"access_ttl", d.duration(&c.Policy.AccessTTL, nil)},
				{"refresh_ttl", d.duration(&c.Policy.RefreshTTL, nil)},
				{"max_age", d.duration(&c.Policy.MaxAge, nil)},
				{"session_key_grace", d.duration(&c.Policy.SessionKeyGrace, nil)},
				{"code_replay_window", d.duration(&c.Policy.CodeReplayWindow, nil)},
				{"max_sessions_per_identity", d.count(&c.Policy.MaxSessionsPerIdentity)},
				{"refresh_reuse_grace", d.duration(&c.Policy.RefreshReuseGrace, nil)},
			})
		}},
		{"platform_timeout", d.duration(&c.PlatformTimeout, nil)},
		{"clients", func(path string, n *yaml.Node) error {
			return d.list(path, n, func(_ string, n *yaml.Node) error {
				cl, err := d.client(len(c.Clients), n)
				c.Clients = append(c.Clients, cl)
				return err
			})
		}},
		{"admin", func(path string, n *yaml.Node) error {
			if isNull(resolve(n)) {
				return nil
			}
			a := &Admin{}
			c.Admin = a
			return d.mapping(path, n, sub(path), []field{
				{"listen", d.str(&a.Listen)},
				{"tokens", func(path string, n *yaml.Node) error {
					return d.list(path, n, func(_ string, n *yaml.Node) error {
						t, err := d.adminToken(len(a.Tokens), n)
						a.Tokens = append(a.Tokens, t)
						return err
					})
				}},
			})
		}},
		{"metrics", func(path string, n *yaml.Node) error {
			if isNull(resolve(n)) {
				return nil
			}
			m := &Metrics{}
			c.Metrics = m
			return d.mapping(path, n, sub(path), []field{{"listen", d.str(&m.Listen)}})
		}},
		{"rate_limits", func(path string, n *yaml.Node) error {
			return d.mapping(path, n, sub(path), []field{
				{"enabled", d.boolean(&c.Limits.Enabled)},
				{"login", d.routeLimit(&c.Limits.Login, false)},
				{"refresh", d.routeLimit(&c.Limits.Refresh, false)},
				{"verify", d.routeLimit(&c.Limits.Verify, true)},
				{"decrypt", d.routeLimit(&c.Limits.Decrypt, true)},
				{"phone", d.routeLimit(&c.Limits.Phone, true)},
			})
		}},
		{"access_tokens", func(path string, n *yaml.Node) error {
			t := &c.AccessTokens
			return d.mapping(path, n, sub(path), []field{
				{"format", d.str(&t.Format)},
				{"ttl", d.positiveDuration(&t.TTL)},
				{"issuer", d.str(&t.Issuer)},
				{"audience", d.strList(&t.Audience)},
				{"algorithm", d.str(&t.Algorithm)},
			})
		}},
		{"signing_key_rotation", d.duration(&c.SigningKeyRotation, nil)},
		{"link_by_phone", d.boolean(&c.LinkByPhone)},
		{"apps", func(path string, n *yaml.Node) error {
			n = resolve(n)
			if isNull(n) {
				return nil
			}
			if n.Kind != yaml.SequenceNode {
				return kindError(path, n, "a list")
			}
			for i, item := range n.Content {
				a, err := d.app(i, item)
				if err != nil {
					return err
				}
				c.Apps = append(c.Apps, a)
			}
			return nil
		}},
	})
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// app decodes apps[i].
func (d *decoder) app(i int, n *yaml.Node) (App, error) {
	n = resolve(n)
	ap := appPath(i, d.peekName(n))
	var a App
	if n.Kind != yaml.MappingNode {
		return a, kindError(ap, n, "a mapping")
	}
	var (
		udGiven bool
		appID   string // app_id: kuaishou's name for its appid
	)
	err := d.mapping(ap, n, func(k string) string { return appKey(ap, k) }, []field{
		{"name", d.str(&a.Name)},
		{"platform", d.flavor(&a.Flavor)},
		{"appid", d.str(&a.AppID)},
		{"app_id", d.str(&appID)},
		{"rsa_private_key", d.secretValue(&a.RSAPrivateKey)},
		{"private_key", d.secretValue(&a.PrivateKey)},
		{"alipay_public_key", d.str(&a.AlipayPublicKey)},
		{"aes_key", d.secretValue(&a.AESKey)},
		{"app_cert", certModeWaits},
		{"alipay_cert", certModeWaits},
		{"alipay_root_cert", certModeWaits},
		{"secret", d.secretValue(&a.Secret)},
		{"app_key", d.str(&a.AppKey)},
		{"app_secret", d.secretValue(&a.AppSecret)},
		{"component_appid", d.str(&a.ComponentAppID)},
		{"component_token", d.tokenSource(&a.ComponentToken)},
		{"authorizer_token", d.tokenSource(&a.AuthorizerToken)},
		{"endpoint", func(path string, n *yaml.Node) error {
			v, ok, err := d.scalar(path, n)
			if ok {
				a.Endpoint = strings.TrimRight(v, "/")
			}
			return err
		}},
		{"userdata_max_age", d.duration(&a.UserdataMaxAge, &udGiven)},
		{"unionid", d.boolean(&a.UnionID)},
		{"expose_unionid", d.boolean(&a.ExposeUnionID)},
		{"token_api", d.str(&a.TokenAPI)},
		{"login_api", d.str(&a.LoginAPI)},
		{"access_tokens", func(path string, n *yaml.Node) error {
			t := &a.AccessTokens
			return d.mapping(path, n, func(k string) string { return path + "." + k }, []field{
				{"format", d.str(&t.Format)},
				{"ttl", d.positiveDuration(&t.TTL)},
				{"audience", d.strList(&t.Audience)},
			})
		}},
	})
	if err != nil {
		return a, err
	}
	switch {
	case usesAppIDKey(a.Flavor) && a.AppID != "":
		return a, errorf(appKey(ap, "appid"), "not used by platform %s: its key is app_id", a.Flavor)
	case usesAppIDKey(a.Flavor):
		a.AppID = appID
	case appID != "":
		return a, errorf(appKey(ap, "app_id"), "not used by platform %s", a.Flavor)
	}
	// The hosts whose payloads carry a timestamped watermark.
	if f := a.Family(); !udGiven && (f == platform.FamilyWeChat || f == platform.FamilyQQ || f == platform.FamilyDouyin) {
		a.UserdataMaxAge = DefaultUserdataMaxAge
	}
	return a, nil
}

// client decodes clients[i].
func (d *decoder) client(i int, n *yaml.Node) (Client, error) {
	n = resolve(n)
	var cl Client
	cp := clientPath(i, d.peek(n, "id"))
	if n.Kind != yaml.MappingNode {
		return cl, kindError(cp, n, "a mapping")
	}
	err := d.mapping(cp, n, func(k string) string { return cp + ": " + k }, []field{
		{"id", d.str(&cl.ID)},
		{"secret", d.secretValue(&cl.Secret)},
	})
	return cl, err
}

// adminToken decodes admin.tokens[i].
func (d *decoder) adminToken(i int, n *yaml.Node) (AdminToken, error) {
	n = resolve(n)
	var t AdminToken
	tp := adminTokenPath(i, d.peek(n, "name"))
	if n.Kind != yaml.MappingNode {
		return t, kindError(tp, n, "a mapping")
	}
	err := d.mapping(tp, n, func(k string) string { return tp + ": " + k }, []field{
		{"name", d.str(&t.Name)},
		{"token", d.secretValue(&t.Token)},
	})
	return t, err
}

// peekName returns the app's name for error paths, "" if it has none yet.
func (d *decoder) peekName(n *yaml.Node) string { return d.peek(n, "name") }

// peek returns the value of key in the mapping n, for error paths; "" if
// it has none.
func (d *decoder) peek(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			v, _, err := d.scalar("", n.Content[i+1])
			if err != nil {
				return ""
			}
			return v
		}
	}
	return ""
}

func (d *decoder) tokenSource(dst **TokenSource) func(string, *yaml.Node) error {
	return func(path string, n *yaml.Node) error {
		if isNull(resolve(n)) {
			return nil
		}
		t := new(TokenSource)
		*dst = t
		return d.mapping(path, n, func(k string) string { return path + "." + k }, []field{
			{"value", d.secretValue(&t.Value)},
			{"url", d.str(&t.URL)},
		})
	}
}

// expand replaces ${NAME} in s with the environment variable NAME and $$
// with $. Any other $ stays as it is. The errors name the variable, never a
// value.
func expand(s string, getenv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 || !validEnvName(s[i+2:i+2+end]) {
				return "", errors.New("a ${ that is not ${NAME}; write $$ for a literal $")
			}
			name := s[i+2 : i+2+end]
			v, ok := getenv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// certModeWaits refuses Alipay's certificate mode, which mplogin does not
// speak yet (docs/platforms/alipay.md): its keys are an error that says so,
// not an unknown key.
func certModeWaits(path string, _ *yaml.Node) error {
	return errorf(path, "Alipay's certificate mode is not supported yet: use public-key mode (private_key and alipay_public_key)")
}
