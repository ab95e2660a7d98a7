package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/session"
)

// usersUsage lists the users subcommands: the admin API's actions on users,
// run on the store itself, without a running service.
const usersUsage = `  mplogin users get --config FILE USER_ID
  mplogin users find --config FILE (--app NAME --openid OPENID | --unionid UNIONID --platform FAMILY | --phone NUMBER)
  mplogin users revoke --config FILE USER_ID
  mplogin users block --config FILE [--reason TEXT] USER_ID
  mplogin users unblock --config FILE USER_ID
  mplogin users delete --config FILE USER_ID
  mplogin users merge --config FILE --from OTHER_ID USER_ID
`

// usageError is a command used wrongly: a flag, an argument, or a value
// the service refuses as invalid. run exits 2 for it, as for an unknown
// command, and 1 for a failure.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// shownError tells the operator msg instead of err's chain, which for an
// answer such as not_found only repeats it; err stays for errors.Is and As.
type shownError struct {
	msg string
	err error
}

func (e shownError) Error() string { return e.msg }
func (e shownError) Unwrap() error { return e.err }

// usersSynopsis is the usage line of the subcommand name; "" when there is
// no such subcommand.
func usersSynopsis(name string) string {
	for line := range strings.Lines(usersUsage) {
		if strings.HasPrefix(line, "  mplogin users "+name+" ") {
			return line
		}
	}
	return ""
}

// usersAuditAction is the admin API's name of the subcommand's action in
// the audit log; "" for a lookup, which the command does not audit.
func usersAuditAction(name string) string {
	switch name {
	case "revoke", "block", "unblock", "merge":
		return name
	case "delete":
		return "erase"
	}
	return ""
}

// cliOperator names the operator in the audit log, as an admin token's
// name does for the admin API: "cli", with the OS user when $USER says.
func cliOperator(getenv func(string) (string, bool)) string {
	if getenv != nil {
		if u, ok := getenv("USER"); ok && u != "" {
			return "cli:" + u
		}
	}
	return "cli"
}

// runUsers is an operator's hand on users at the shell: the admin API's
// find, revoke, block, unblock, erase and merge, on the session service
// the server builds from the configuration, printing the API's answers.
// With SQLite, the service must be stopped (the file is locked by the one
// process that uses it); use the admin API while it runs.
func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("users takes a subcommand: get, find, revoke, block, unblock, delete or merge\nusage:\n%s", strings.TrimSuffix(usersUsage, "\n"))}
	}
	name, args := args[0], args[1:]
	synopsis := usersSynopsis(name)
	if synopsis == "" {
		return usageError{fmt.Errorf("users: unknown subcommand %q\nusage:\n%s", name, strings.TrimSuffix(usersUsage, "\n"))}
	}
	fs := newFlags("users "+name, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage:\n%s", synopsis)
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "configuration file (YAML) of the service")
	var (
		reason, from string
		q            session.UserQuery
	)
	ids := 1 // positional user ids: find names its user by flags instead
	switch name {
	case "block":
		fs.StringVar(&reason, "reason", "", fmt.Sprintf("why, kept for the next operator (at most %d characters)", session.MaxBlockReason))
	case "merge":
		fs.StringVar(&from, "from", "", "the user whose identities and sessions move to USER_ID, and who is then deleted")
	case "find":
		ids = 0
		// Each flag fills a field of the query; FindUser judges which
		// combinations name a user, so a new way to find one is a flag.
		fs.StringVar(&q.App, "app", "", "a configured app's name, with --openid")
		fs.StringVar(&q.OpenID, "openid", "", "the user's openid in that app")
		fs.StringVar(&q.UnionID, "unionid", "", "the user's unionid, with --platform")
		fs.StringVar(&q.Phone, "phone", "", "the user's phone number: +, the country code and the number, or a mainland number")
		fs.Func("platform", "the unionid's platform family: wechat, baidu, douyin, qq, kuaishou or alipay", func(s string) error {
			// Each family has a flavor of its own name.
			if f := platform.Family(s); platform.Flavor(s).Family() != f {
				return errors.New("must be wechat, baidu, douyin, qq, kuaishou or alipay")
			}
			q.Family = platform.Family(s)
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	var id string
	switch {
	case fs.NArg() > ids && ids == 1 && strings.HasPrefix(fs.Arg(1), "-"):
		return usageError{fmt.Errorf("users %s: flags go before the user id: %s", name, strings.TrimSpace(synopsis))}
	case fs.NArg() > ids:
		return usageError{fmt.Errorf("users %s: unexpected argument %q", name, fs.Arg(ids))}
	case fs.NArg() < ids:
		return usageError{fmt.Errorf("users %s: the user id is missing: %s", name, strings.TrimSpace(synopsis))}
	case *path == "":
		return usageError{fmt.Errorf("users %s: --config is required", name)}
	case name == "merge" && from == "":
		return usageError{errors.New("users merge: --from is required")}
	case ids == 1:
		id = fs.Arg(0)
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	svc := srv.Sessions()

	var answer any // the admin API's answer; nil where it answers 204
	if (ids == 1 && !httpapi.ValidUserID(id)) || (from != "" && !httpapi.ValidUserID(from)) {
		// As the API: an id no store could hold names no user.
		err = mplogin.Errorf(mplogin.CodeNotFound, "no such user")
	}
	if err == nil {
		answer, err = usersDo(ctx, svc, name, id, from, reason, q)
	}
	if action := usersAuditAction(name); action != "" {
		httpapi.AdminAudit{Action: action, Admin: cliOperator(getenv), User: id, From: from, Err: err}.Log(ctx, log)
	}
	if err != nil {
		return usersError(name, id, from, err)
	}
	if answer == nil {
		return nil
	}
	b, err := json.Marshal(answer)
	if err != nil {
		return fmt.Errorf("users %s: %w", name, err)
	}
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("users %s: %w", name, err)
	}
	return nil
}

// usersDo runs the subcommand name on svc and returns the admin API's
// answer to the same action; nil where the API answers 204.
func usersDo(ctx context.Context, svc *session.Service, name, id, from, reason string, q session.UserQuery) (any, error) {
	switch name {
	case "get":
		u, err := svc.User(ctx, id)
		if err != nil {
			return nil, err
		}
		return httpapi.AdminUserBody(u), nil
	case "find":
		u, err := svc.FindUser(ctx, q)
		if err != nil {
			return nil, err
		}
		return httpapi.AdminUserBody(u), nil
	case "revoke":
		n, err := svc.RevokeUser(ctx, id)
		if err != nil {
			return nil, err
		}
		return httpapi.AdminRevokedBody(n), nil
	case "block":
		n, err := svc.BlockUser(ctx, id, reason)
		if err != nil {
			return nil, err
		}
		return httpapi.AdminRevokedBody(n), nil
	case "unblock":
		return nil, svc.UnblockUser(ctx, id)
	case "delete":
		return nil, svc.EraseUser(ctx, id)
	case "merge":
		if err := svc.MergeUsers(ctx, id, from); err != nil {
			return nil, err
		}
		// The API answers the merged user, as it is now.
		u, err := svc.User(ctx, id)
		if err != nil {
			return nil, err
		}
		return httpapi.AdminUserBody(u), nil
	}
	return nil, fmt.Errorf("users: no subcommand %q", name)
}

// usersError is err as the operator reads it: an unknown user or a
// refused value in a sentence, anything else (a store down) whole.
func usersError(name, id, from string, err error) error {
	var e *mplogin.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("users %s: %w", name, err)
	}
	switch e.Code {
	case mplogin.CodeNotFound:
		switch {
		case from != "":
			return shownError{fmt.Sprintf("users %s: no such user: %s or %s", name, id, from), err}
		case id != "":
			return shownError{fmt.Sprintf("users %s: no such user: %s", name, id), err}
		}
		return shownError{fmt.Sprintf("users %s: no such user has that identity", name), err}
	case mplogin.CodeUnknownApp:
		return usageError{shownError{fmt.Sprintf("users %s: --app names no configured app", name), err}}
	case mplogin.CodeInvalidRequest:
		return usageError{shownError{fmt.Sprintf("users %s: %s", name, e.Message), err}}
	}
	return fmt.Errorf("users %s: %w", name, err)
}
