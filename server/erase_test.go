package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
)

// TestDeleteMeLeavesNoTrace: a user with two identities (WeChat, and Baidu
// with a unionid, joined by phone), a phone number, rotated tokens and
// spent login codes deletes their account; then every table of the SQL
// store and every Redis key is read, and none holds their openids,
// unionid, phone number or user ids. A later login is a new user.
func TestDeleteMeLeavesNoTrace(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(func(cfg *config.Config) {
			c.applyForPhones(cfg)
			cfg.LinkByPhone = true
		}))
		alice := "alice-erase-" + time.Now().Format("150405.000000000")
		wx := r.login(t, "wechat", wxAppID, "w", alice)
		pc, err := r.em.PhoneCode(wxAppID, alice)
		if err != nil {
			t.Fatal(err)
		}
		if status, v := r.call(t, "POST", "/v1/phone", wx.AccessToken, `{"code":"`+pc+`"}`); status != 200 {
			t.Fatalf("phone: %d %v", status, v)
		}
		bd := r.login(t, "baidu", bdAppKey, "b", alice)
		d, err := r.em.UserData("baidu", bdAppKey, alice, emulator.KindPhone)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"encrypted_data": d.EncryptedData, "iv": d.IV})
		if status, v := r.call(t, "POST", "/v1/phone", bd.AccessToken, string(body)); status != 200 || v["linked"] != true {
			t.Fatalf("Baidu phone: %d %v", status, v)
		}
		status, v := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+bd.RefreshToken+`"}`)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, v)
		}
		rotated := tokensOf(t, v)
		if bd.User.UnionID == "" {
			t.Fatal("the Baidu login has no unionid: the test needs one")
		}

		if status, v := r.call(t, "DELETE", "/v1/me", rotated.AccessToken, ""); status != 204 {
			t.Fatalf("DELETE /v1/me: %d %v", status, v)
		}
		for _, tok := range []string{wx.AccessToken, rotated.AccessToken} {
			if status, _ := r.call(t, "GET", "/v1/session", tok, ""); status != 401 {
				t.Fatalf("a session after the erasure: %d, want 401", status)
			}
		}

		needles := []string{wx.User.OpenID, bd.User.OpenID, bd.User.UnionID, wx.User.ID, bd.User.ID, r.em.PhoneNumber(alice)}
		if wx.User.UnionID != "" {
			needles = append(needles, wx.User.UnionID)
		}
		var found []string
		switch {
		case c.store == "":
			found = scanSQLite(t, filepath.Join(r.dir, "mplogin.db"), needles)
		default:
			found = scanPostgres(t, c.store, needles)
		}
		if c.sessions != "" {
			found = append(found, scanRedis(t, c.sessions, needles)...)
		}
		for _, f := range found {
			t.Error(f)
		}

		again := r.login(t, "wechat", wxAppID, "w", alice)
		if again.User.Created == nil || !*again.User.Created || again.User.ID == wx.User.ID {
			t.Fatalf("login after the erasure: user %s; want a new user", again.User.ID)
		}
	})
}

// scanSQLite reads every row of every table of the database at path as
// text, and names where a needle is found.
func scanSQLite(t *testing.T, path string, needles []string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("the database has tables %v: not the store's", tables)
	}
	var found []string
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				for _, n := range needles {
					if strings.Contains(s, n) {
						found = append(found, fmt.Sprintf("sqlite %s.%s holds %q", table, cols[i], n))
					}
				}
			}
		}
		rows.Close()
	}
	return found
}

// scanPostgres reads every row of every table of the store's schema as
// text, and names where a needle is found.
func scanPostgres(t *testing.T, dsn string, needles []string) []string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("the schema has tables %v: not the store's", tables)
	}
	var found []string
	for _, table := range tables {
		for _, n := range needles {
			var count int
			q := `SELECT count(*) FROM ` + pgx.Identifier{table}.Sanitize() + ` t WHERE strpos(t::text, $1) > 0`
			if err := conn.QueryRow(ctx, q, n).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count > 0 {
				found = append(found, fmt.Sprintf("postgres %s: %d rows hold %q", table, count, n))
			}
		}
	}
	return found
}

// scanRedis reads every key of the database and what it holds, and names
// where a needle is found.
func scanRedis(t *testing.T, url string, needles []string) []string {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := t.Context()
	var found []string
	keys := 0
	it := c.Scan(ctx, 0, "*", 1000).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		keys++
		vals := []string{k}
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			vals = append(vals, c.Get(ctx, k).Val())
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = append(vals, c.SMembers(ctx, k).Val()...)
		case "zset":
			vals = append(vals, c.ZRange(ctx, k, 0, -1).Val()...)
		case "list":
			vals = append(vals, c.LRange(ctx, k, 0, -1).Val()...)
		case "none": // expired while scanning
		default:
			t.Fatalf("key %s has type %s", k, typ)
		}
		for _, v := range vals {
			for _, n := range needles {
				if strings.Contains(v, n) {
					found = append(found, fmt.Sprintf("redis key %s holds %q", k, n))
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal("redis holds no key: not the store's")
	}
	return found
}
