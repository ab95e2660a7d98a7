package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/migrate"
	"github.com/mplogin/mplogin/store"
)

// holdWriter keeps the batcher busy with a write until release is called
// (or the test ends): writes queue behind it.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, free := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.inTx(context.Background(), "hold", func(context.Context, wtx) error {
			close(held)
			<-free
			return nil
		})
	}()
	<-held
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(free)
			if err := <-done; err != nil {
				t.Errorf("holding write: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "i.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPragmas checks the settings every connection of each pool must have.
func TestPragmas(t *testing.T) {
	s := openInternal(t)
	for _, c := range []struct {
		pool string
		db   rowQuerier
		want map[string]string
	}{
		// The batcher is idle: the test may use its connection.
		{"writer", s.tx.conn, map[string]string{
			"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1",
			"busy_timeout": "5000", "query_only": "0",
			"wal_autocheckpoint": "0", "temp_store": "2", "journal_size_limit": strconv.Itoa(walSizeLimit),
			"cache_size": "-2000",
		}},
		{"reader", s.read, map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "query_only": "1",
			"cache_size": "-" + strconv.Itoa(smallCacheKiB),
		}},
		{"checkpointer", s.ckpt.db, map[string]string{
			"journal_mode": "wal", "wal_autocheckpoint": "0", "cache_size": "-" + strconv.Itoa(smallCacheKiB),
		}},
	} {
		for pragma, want := range c.want {
			var got string
			if err := c.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", c.pool, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", c.pool, pragma, got, want)
			}
		}
	}
	if got := s.write.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
}

// TestQueryPlans checks that the hot and the sweeping queries use an index
// instead of scanning a table.
func TestQueryPlans(t *testing.T) {
	s := openInternal(t)
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"identity", getIdentitySQL, []any{"p", "a", "o"}},
		{"union user", unionUserSQL, []any{"p", "u"}},
		{"update identity", updateIdentitySQL, []any{nil, nil, 1, "p", "a", "o"}},
		{"set unionid", setUnionIDSQL, []any{"u", "p", "a", "o"}},
		{"user blocked", userBlockedSQL, []any{"u"}},
		{"reserve decrypt attempt", reserveAttemptSQL, []any{"p", "a", "o", 5}},
		{"decrypt attempts", attemptsSQL, []any{"p", "a", "o"}},
		{"release decrypt attempt", releaseAttemptSQL, []any{"p", "a", "o"}},
		{"user", getUserSQL, []any{"u"}},
		{"users by phone", phoneUsersSQL, []any{[]byte{1}, 20}},
		{"session by access", sessionByAccessSQL, []any{[]byte{1}}},
		{"session by id", sessionByIDSQL, []any{"x"}},
		{"session for logout", sessionForLogoutSQL, []any{[]byte{1}}},
		{"session by refresh", sessionByRefreshSQL, []any{[]byte{1}}},
		{"refresh token", refreshSessionSQL, []any{[]byte{1}}},
		{"spend", spendRefreshSQL, []any{[]byte{1}, "x"}},
		{"rotate", rotateSessionSQL, []any{[]byte{1}, 1, []byte{2}, 1, 1, []byte{1}, []byte{3}, 1, "x"}},
		{"revoke", revokeSessionSQL, []any{1, "x"}},
		{"revoke user", revokeUserSessionsSQL, []any{1, "u", "", "", "", ""}},
		{"revoke user's origin", revokeUserSessionsSQL, []any{1, "u", "o", "p", "a", "s"}},
		{"some rotatable", someRotatableSQL, []any{nil, "u", "o", "p", "a", "", 1, 21}},
		{"revoke all but", revokeAllButSQL, []any{1, "u", "o", "p", "a", "", 1, 20}},
		{"user's sessions", listUserSessionsSQL, []any{"u", 1}},
		{"erase user's sessions", eraseSessionsSQL, []any{"u"}},
		{"move user's sessions", moveSessionsSQL, []any{"u", "v"}},
		{"decrypt failure", addDecryptFailureSQL, []any{"x"}},
		{"code", getCodeSQL, []any{[]byte{1}, 1}},
		{"claim replay", claimReplaySQL, []any{[]byte{1}, 1, 3}},
		{"sweep codes", deleteCodesSQL, []any{1, 1000}},
		{"sweep sessions", deleteSessionsSQL, []any{1, 1000}},
		{"access token", getAccessTokenSQL, []any{"k"}},
		{"delete access token", deleteAccessTokenSQL, []any{"k", []byte{1}}},
		// What ON DELETE CASCADE runs for each swept session.
		{"cascade", `DELETE FROM spent_refresh WHERE session_id = ?`, []any{"x"}},
	} {
		rows, err := s.tx.conn.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			// The cap's count reads the Keep + 1 rows its subquery found;
			// a SELECT without FROM reads its one row.
			counts := q.sql == someRotatableSQL && step == "SCAN (subquery-1)"
			scans := strings.HasPrefix(step, "SCAN ") && step != "SCAN CONSTANT ROW"
			if (scans && !counts) || strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("%s: plan %q has %q", q.name, plan, step)
			}
		}
		t.Logf("%s: %q", q.name, plan)
	}
}

// TestIdentityUpdateLeavesUnionIndex checks that a returning login's
// update of its identity does not touch identities_union: SQLite rewrites
// the entries of every index whose columns a SET names, even to the same
// value, and that entry sits on a random page of a large index.
func TestIdentityUpdateLeavesUnionIndex(t *testing.T) {
	s := openInternal(t)
	for _, q := range []struct {
		name, sql string
		args      []any
		touches   bool
	}{
		{"update identity", updateIdentitySQL, []any{nil, nil, 1, "p", "a", "o"}, false},
		{"set unionid", setUnionIDSQL, []any{"u", "p", "a", "o"}, true},
	} {
		touches := false
		for _, op := range explain(t, s.tx.conn, q.sql, q.args...) {
			if strings.HasPrefix(op.opcode, "Idx") && op.p4 == "identities_union" {
				touches = true
			}
		}
		if touches != q.touches {
			t.Errorf("%s writes identities_union: %v, want %v", q.name, touches, q.touches)
		}
	}
}

// TestLoginReadsBlockedIndex checks that a login learns whether its user
// is blocked from users_blocked, the index of blocked users alone, and
// not from the users table, where each user is on a page of its own.
func TestLoginReadsBlockedIndex(t *testing.T) {
	s := openInternal(t)
	root := func(name string) int {
		var n int
		if err := s.tx.conn.QueryRowContext(t.Context(), `SELECT rootpage FROM sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatalf("root page of %s: %v", name, err)
		}
		return n
	}
	users, blocked := root("users"), root("users_blocked")
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"update identity", updateIdentitySQL, []any{nil, nil, 1, "p", "a", "o"}},
		{"user blocked", userBlockedSQL, []any{"u"}},
	} {
		opened := map[int]bool{}
		for _, op := range explain(t, s.tx.conn, q.sql, q.args...) {
			if op.opcode == "OpenRead" {
				opened[op.p2] = true
			}
		}
		if !opened[blocked] || opened[users] {
			t.Errorf("%s opens users_blocked %v and users %v; want only users_blocked", q.name, opened[blocked], opened[users])
		}
	}
}

// instruction is a line of a statement's bytecode (EXPLAIN).
type instruction struct {
	opcode string
	p2     int
	p4     string
}

// explain returns the bytecode of query.
func explain(t *testing.T, db querier, query string, args ...any) []instruction {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var out []instruction
	for rows.Next() {
		var (
			addr, p1, p2, p3, p5 int
			opcode, p4, comment  sql.NullString
		)
		if err := rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			t.Fatal(err)
		}
		out = append(out, instruction{opcode.String, p2, p4.String})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckpointer checks that a commit leaves the WAL to the checkpointer,
// which copies all of it into the database file after the commit.
func TestCheckpointer(t *testing.T) {
	s := openInternal(t)
	type result struct {
		wal, done int
		err       error
	}
	seen := make(chan result, 1)
	s.ckpt.observe = func(wal, done int, err error) {
		select {
		case seen <- result{wal, done, err}:
		default:
		}
	}
	now := time.Now()
	if err := s.PutCode(t.Context(), store.ExchangedCode{Hash: []byte("h"), App: "a", Family: "p", AppID: "i", OpenID: "o", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-seen:
		if r.err != nil || r.wal == 0 || r.done != r.wal {
			t.Errorf("checkpoint after a commit: %d of %d WAL frames copied, err %v; want all of at least 1", r.done, r.wal, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint within 10s of a commit")
	}
}

// TestCheckpointerSyncs checks that the checkpointer syncs the database
// file after a checkpoint that copied frames, before it asks the writer to
// rewind, and not after one that copied nothing.
func TestCheckpointerSyncs(t *testing.T) {
	s := openInternal(t)
	events := make(chan string, 16)
	// Set before the first commit: the checkpointer reads them only after
	// a commit kicks it. One checkpoint per commit, a rewind after each.
	s.ckpt.every, s.ckpt.frames, s.ckpt.catchUps = 0, 1, 0
	s.ckpt.syncDB = func() error { events <- "sync"; return s.dbFile.Sync() }
	s.ckpt.rewind = func() { events <- "rewind" }
	next := func() string {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no checkpoint within 10s")
			return ""
		}
	}
	c := store.ExchangedCode{Hash: []byte("h"), App: "a", Family: "p", AppID: "i", OpenID: "o", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.PutCode(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if a, b := next(), next(); a != "sync" || b != "rewind" {
		t.Fatalf("after a commit: %s, %s; want sync, rewind", a, b)
	}
	s.ckpt.committed() // nothing new to copy
	if e := next(); e != "rewind" {
		t.Fatalf("after a checkpoint with nothing to copy: %s; want no sync, a rewind", e)
	}
}

// TestCheckpointerCatchesUp checks that, before it asks for a rewind, the
// checkpointer copies and syncs what the writer committed while it synced,
// so that the writer's own checkpoint finds nothing left to copy.
func TestCheckpointerCatchesUp(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	put := func(b byte) error {
		return s.PutCode(ctx, store.ExchangedCode{Hash: []byte{b}, App: "a", Family: "p", AppID: "i", OpenID: "o",
			ExpiresAt: time.Now().Add(time.Minute)})
	}
	type event struct {
		what      string
		wal, done int
	}
	events := make(chan event, 64)
	wrote := false
	// Set before the first commit: the checkpointer reads them only after
	// a commit kicks it. Every WAL is long enough to start over.
	s.ckpt.every, s.ckpt.frames, s.ckpt.catchUps = 0, 1, 3
	s.ckpt.observe = func(wal, done int, err error) {
		if err != nil {
			t.Errorf("checkpoint: %v", err)
		}
		events <- event{"checkpoint", wal, done}
	}
	s.ckpt.syncDB = func() error {
		events <- event{what: "sync"}
		if !wrote { // the writer commits while the file syncs
			wrote = true
			if err := put(2); err != nil {
				t.Error(err)
			}
		}
		return s.dbFile.Sync()
	}
	s.ckpt.rewind = func() { events <- event{what: "rewind"} }
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	var got []event
	for len(got) < 5 {
		select {
		case e := <-events:
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("events %+v, then none within 10s", got)
		}
	}
	if got[0].what != "checkpoint" || got[1].what != "sync" || got[2].what != "checkpoint" ||
		got[3].what != "sync" || got[4].what != "rewind" {
		t.Fatalf("events %+v; want checkpoint, sync, checkpoint, sync, rewind", got)
	}
	// The commit during the sync may have started the WAL over (the first
	// pass had copied all of it): the second pass sees its frames alone.
	if second := got[2]; second.wal == 0 || second.done != second.wal {
		t.Errorf("the catch-up copied %d of %d frames: want all, and some", second.done, second.wal)
	}
}

// TestWALRewinds checks that a long WAL starts over even when no
// checkpoint beside the writer could copy all of it before the writer went
// on. A reader pins the WAL while the checkpointer runs, so that checkpoint
// copies only part of it; the writer's next transaction would then append
// to the WAL, were the writer not asked to checkpoint first.
func TestWALRewinds(t *testing.T) {
	s := openInternal(t)
	// One checkpoint per commit: no catching up before the rewind.
	s.ckpt.every, s.ckpt.frames, s.ckpt.catchUps = 0, 1, 0
	type result struct{ wal, done int }
	seen := make(chan result, 1)
	s.ckpt.observe = func(wal, done int, err error) {
		if err != nil {
			t.Errorf("checkpoint: %v", err)
		}
		seen <- result{wal, done}
	}
	ctx := t.Context()
	write := func(i byte) result {
		t.Helper()
		c := store.ExchangedCode{Hash: []byte{i}, App: "a", Family: "p", AppID: "i", OpenID: "o", ExpiresAt: time.Now().Add(time.Minute)}
		if err := s.PutCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-seen:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no checkpoint within 10s of a commit")
			return result{}
		}
	}
	write(1)
	conn, err := s.read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reader, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM codes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	pinned := write(2)
	if pinned.done >= pinned.wal {
		t.Fatalf("checkpoint with a reader on the WAL copied %d of %d frames; the test needs a partial one", pinned.done, pinned.wal)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Each commit here changes the same two pages: a WAL started over holds
	// the last commit's frames only, one appended to holds both commits'.
	if after := write(3); after.wal > pinned.wal {
		t.Errorf("WAL of %d frames, then %d after one more commit: want it started over", pinned.wal, after.wal)
	}
}

// gatherFixture is a store with only the batcher's channels, and a sender of
// writes that reports each one taken.
func gatherFixture(t *testing.T) (*Store, func(n int)) {
	s := &Store{ops: make(chan *writeOp), quit: make(chan struct{})}
	send := func(n int) {
		for range n {
			select {
			case s.ops <- &writeOp{}:
			case <-time.After(10 * time.Second):
				t.Error("gather stopped taking writes")
				return
			}
		}
	}
	return s, send
}

// TestGatherStopsAtTarget: with writes waiting, gather fills the batch to
// gatherTarget without waiting for its window, and takes no more.
func TestGatherStopsAtTarget(t *testing.T) {
	s, send := gatherFixture(t)
	go send(gatherTarget + 3)
	got := s.gather([]*writeOp{{}}, time.After(10*time.Second)) // closes only if gather overshoots
	if len(got) != gatherTarget {
		t.Fatalf("gathered %d writes, want %d", len(got), gatherTarget)
	}
	// The sender still holds the other 4 (7 of its 11 went to gather).
	for i := range 4 {
		select {
		case <-s.ops:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d writes left after gather, want 4: gather took more than its target", i)
		}
	}
}

// TestGatherEndsWithWindow: short of its target, gather returns what it has
// when the window closes, and when the store closes.
func TestGatherEndsWithWindow(t *testing.T) {
	for _, how := range []string{"window", "quit"} {
		s, send := gatherFixture(t)
		window := make(chan time.Time)
		result := make(chan []*writeOp, 1)
		go func() { result <- s.gather([]*writeOp{{}}, window) }()
		send(2) // an unbuffered send returns once gather has the write
		if how == "window" {
			window <- time.Now()
		} else {
			close(s.quit)
		}
		select {
		case got := <-result:
			if len(got) != 3 {
				t.Errorf("%s: gathered %d writes, want 3", how, len(got))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: gather did not return", how)
		}
	}
}

// TestBatchFailureIsolated: in one batch, a write that fails after writing
// leaves nothing behind and the others commit, whether they are plain
// (no savepoint of their own) or not. A failing plain write makes the
// batch run again, carefully: the plain writes before it run twice.
func TestBatchFailureIsolated(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	sess := func(id string) store.Session {
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		return store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
			AccessHash: []byte("a-" + id), RefreshHash: []byte("r-" + id),
			RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at, LastUsedAt: at}
	}
	if err := s.CreateSession(ctx, sess("taken")); err != nil {
		t.Fatal(err)
	}
	for _, failing := range []bool{true, false} { // is the failing write plain?
		runs := map[string]int{}
		op := func(plain bool, ids ...string) *writeOp {
			return &writeOp{ctx: ctx, plain: plain, done: make(chan error, 1), fn: func(ctx context.Context, tx wtx) error {
				runs[ids[0]]++
				for _, id := range ids {
					if err := insertSession(ctx, tx, sess(id)); err != nil {
						return err
					}
				}
				return nil
			}}
		}
		p := strconv.FormatBool(failing) + "-"
		batch := []*writeOp{
			op(true, p+"first"),
			op(failing, p+"partial", "taken"), // its first insert must be undone
			op(false, p+"careful"),
			op(true, p+"last"),
		}
		s.commitBatch(batch)
		for i, w := range batch {
			err := <-w.done
			if (i == 1) != (err != nil) {
				t.Errorf("failing write plain=%v: write %d: err = %v", failing, i, err)
			}
		}
		for _, id := range []string{"first", "careful", "last"} {
			if _, err := s.SessionByID(ctx, p+id); err != nil {
				t.Errorf("failing write plain=%v: session %q of a sound write: %v", failing, id, err)
			}
		}
		if _, err := s.SessionByID(ctx, p+"partial"); err == nil {
			t.Errorf("failing write plain=%v: the failed write's first insert was committed", failing)
		}
		if want := map[bool]int{true: 2, false: 1}[failing]; runs[p+"first"] != want {
			t.Errorf("failing write plain=%v: the first write ran %d times, want %d", failing, runs[p+"first"], want)
		}
	}
}

// TestWriteOutlivesCancel checks that a write whose caller gives up once
// it has begun runs to its end, and that the writes sharing its batch are
// neither failed nor run again because of it.
func TestWriteOutlivesCancel(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := func(id string) store.Session {
		return store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
			AccessHash: []byte("a-" + id), RefreshHash: []byte("r-" + id),
			RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at, LastUsedAt: at}
	}
	runs := map[string]int{}
	op := func(ctx context.Context, id string, before func()) *writeOp {
		return &writeOp{ctx: ctx, plain: true, done: make(chan error, 1), fn: func(ctx context.Context, tx wtx) error {
			runs[id]++
			before()
			return insertSession(ctx, tx, sess(id))
		}}
	}
	gone, cancel := context.WithCancel(ctx)
	defer cancel()
	batch := []*writeOp{
		op(ctx, "first", func() {}),
		op(gone, "abandoned", cancel), // the caller gives up mid-write
		op(ctx, "last", func() {}),
	}
	s.commitBatch(batch)
	for i, w := range batch {
		if err := <-w.done; err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for _, id := range []string{"first", "abandoned", "last"} {
		if runs[id] != 1 {
			t.Errorf("write %q ran %d times, want once", id, runs[id])
		}
		if _, err := s.SessionByID(ctx, id); err != nil {
			t.Errorf("session %q: %v", id, err)
		}
	}
}

// openBefore opens a new database file with the migrations before version
// applied, for a test to write rows in that schema and open the file with
// this version.
func openBefore(t *testing.T, version int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.db")
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m migrate.Migration) bool { return m.Version == version })
	if i < 0 {
		t.Fatalf("no migration %d", version)
	}
	db, err := sql.Open("sqlite", dsn(path, time.Second, false, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(t.Context(), db, ms[:i], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return path, db
}

// openAfter closes db, the file at path as openBefore left it with the
// test's rows, and opens the file with this version, which migrates it.
func openAfter(t *testing.T, path string, db *sql.DB) *Store {
	t.Helper()
	db.Close()
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMigrationKeepsRefreshTokens writes sessions in the schema before
// migration 0005 (every refresh token in refresh_tokens) and opens the file
// with this version: the sessions read back whole, the current refresh
// token rotates, a spent one is still recognised as a replay, and the sweep
// takes a dead session's spent tokens with it.
func TestMigrationKeepsRefreshTokens(t *testing.T) {
	ctx := t.Context()
	path, db := openBefore(t, 5)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	us := func(d time.Duration) int64 { return at.Add(d).UnixMicro() }
	// "rotated" was rotated once (r0 spent, r1 current); "revoked" was
	// rotated, then revoked; "plain" never rotated.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO sessions (id, user_id, app, platform, app_id, open_id, access_hash,
			access_expires_at, refresh_hash, refresh_expires_at, created_at, expires_at,
			last_used_at, revoked_at, decrypt_failures, union_id)
			VALUES (?, 'u1', 'main', 'wechat', 'wxA', 'o1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"rotated", []byte("a1"), us(time.Hour), []byte("r1"), us(48 * time.Hour),
				us(0), nil, us(time.Minute), nil, 2, "un1"}},
		{`INSERT INTO sessions (id, user_id, app, platform, app_id, open_id, access_hash,
			access_expires_at, refresh_hash, refresh_expires_at, created_at, last_used_at, revoked_at)
			VALUES ('revoked', 'u2', 'main', 'wechat', 'wxA', 'o2', CAST('a2' AS BLOB), ?, CAST('r3' AS BLOB), ?, ?, ?, ?)`,
			[]any{us(time.Hour), us(48 * time.Hour), us(0), us(0), us(time.Minute)}},
		{`INSERT INTO sessions (id, user_id, app, platform, app_id, open_id, access_hash,
			access_expires_at, refresh_hash, refresh_expires_at, created_at, expires_at)
			VALUES ('plain', 'u3', 'main', 'wechat', 'wxA', 'o3', CAST('a4' AS BLOB), ?, CAST('r4' AS BLOB), ?, ?, ?)`,
			[]any{us(time.Hour), us(48 * time.Hour), us(0), us(72 * time.Hour)}},
		{`INSERT INTO refresh_tokens (hash, session_id, spent, expires_at) VALUES
			(CAST('r0' AS BLOB), 'rotated', 1, ?), (CAST('r1' AS BLOB), 'rotated', 0, ?),
			(CAST('r2' AS BLOB), 'revoked', 1, ?), (CAST('r3' AS BLOB), 'revoked', 0, ?), (CAST('r4' AS BLOB), 'plain', 0, ?)`,
			[]any{us(time.Hour), us(48 * time.Hour), us(time.Hour), us(48 * time.Hour), us(48 * time.Hour)}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	s := openAfter(t, path, db)
	want := store.Session{
		ID: "rotated", UserID: "u1", App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1",
		AccessHash: []byte("a1"), AccessExpiresAt: at.Add(time.Hour),
		RefreshHash: []byte("r1"), RefreshExpiresAt: at.Add(48 * time.Hour),
		CreatedAt: at, LastUsedAt: at.Add(time.Minute), DecryptFailures: 2, UnionID: "un1",
	}
	got, err := s.SessionByAccess(ctx, []byte("a1"))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated session = %+v, %v\nwant %+v", got, err, want)
	}
	if got, err := s.SessionByID(ctx, "plain"); err != nil || !got.ExpiresAt.Equal(at.Add(72*time.Hour)) {
		t.Fatalf("migrated session plain = %+v, %v", got, err)
	}

	now := at.Add(2 * time.Minute)
	rot := func(old string) (store.Session, error) {
		return s.RotateRefresh(ctx, store.Rotation{
			OldRefreshHash: []byte(old), NewAccessHash: []byte("new-a-" + old), AccessExpiresAt: now.Add(time.Hour),
			NewRefreshHash: []byte("new-r-" + old), RefreshExpiresAt: now.Add(48 * time.Hour), Now: now,
		})
	}
	if sess, err := rot("r4"); err != nil || sess.ID != "plain" {
		t.Fatalf("rotating plain's current token: %+v, %v", sess, err)
	}
	if _, err := rot("r4"); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replaying the token spent after the migration: %v, want ErrReused", err)
	}
	if _, err := rot("r0"); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replaying a token spent before the migration: %v, want ErrReused", err)
	}
	if sess, err := s.SessionByID(ctx, "rotated"); err != nil || !sess.RevokedAt.Equal(now) {
		t.Fatalf("after the replay, rotated = %+v, %v; want revoked at %v", sess, err, now)
	}
	if _, err := rot("r9"); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("an unknown token: %v", err)
	}

	// All three are revoked now; the sweep takes them and every spent token.
	if n, err := s.DeleteExpired(ctx, now.Add(time.Minute)); err != nil || n != 3 {
		t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
	}
	var left int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM spent_refresh`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d spent tokens left after the sweep (%v)", left, err)
	}
}

// TestMigrationAddsPrevAccessHash opens a file written before migration
// 0008 (no previous access hash): its session is found for a logout by its
// current access token, and after a rotation by the replaced one too.
func TestMigrationAddsPrevAccessHash(t *testing.T) {
	ctx := t.Context()
	path, db := openBefore(t, 8)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, err := db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, app, platform, app_id, open_id,
		access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at)
		VALUES ('s1', 'u1', 'main', 'wechat', 'wxA', 'o1', CAST('a1' AS BLOB), ?, CAST('r1' AS BLOB), ?, ?)`,
		at.Add(time.Hour).UnixMicro(), at.Add(48*time.Hour).UnixMicro(), at.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	s := openAfter(t, path, db)
	if got, err := s.SessionForLogout(ctx, []byte("a1")); err != nil || got.ID != "s1" {
		t.Fatalf("SessionForLogout(current token) of a migrated session = %+v, %v", got, err)
	}
	now := at.Add(time.Minute)
	if _, err := s.RotateRefresh(ctx, store.Rotation{OldRefreshHash: []byte("r1"), NewAccessHash: []byte("a2"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: []byte("r2"), RefreshExpiresAt: now.Add(48 * time.Hour), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByAccess(ctx, []byte("a1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SessionByAccess(replaced token) = %v, want ErrNotFound", err)
	}
	if got, err := s.SessionForLogout(ctx, []byte("a1")); err != nil || got.ID != "s1" || string(got.AccessHash) != "a2" {
		t.Fatalf("SessionForLogout(replaced token) = %+v, %v", got, err)
	}
}

// TestMigrationAddsRepeats opens a file written before migration 0009: its
// session has no origin and its spent token no successor (a repeat
// revokes), and its code no repeat window (a claim is refused).
func TestMigrationAddsRepeats(t *testing.T) {
	ctx := t.Context()
	path, db := openBefore(t, 9)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO sessions (id, user_id, app, platform, app_id, open_id,
			access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at)
			VALUES ('s1', 'u1', 'main', 'wechat', 'wxA', 'o1', CAST('a2' AS BLOB), ?1, CAST('r2' AS BLOB), ?2, ?3)`,
			[]any{at.Add(time.Hour).UnixMicro(), at.Add(48 * time.Hour).UnixMicro(), at.UnixMicro()}},
		{`INSERT INTO spent_refresh (hash, session_id) VALUES (CAST('r1' AS BLOB), 's1')`, nil},
		{`INSERT INTO codes (hash, app, platform, app_id, open_id, expires_at)
			VALUES (CAST('c1' AS BLOB), 'main', 'wechat', 'wxA', 'o1', ?)`, []any{at.Add(5 * time.Minute).UnixMicro()}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	s := openAfter(t, path, db)
	now := at.Add(time.Minute)
	if got, err := s.SessionByID(ctx, "s1"); err != nil || got.Origin != "" || got.Successor != nil {
		t.Fatalf("migrated session = %+v, %v", got, err)
	}
	want := store.ExchangedCode{Hash: []byte("c1"), App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1", ExpiresAt: at.Add(5 * time.Minute)}
	if got, err := s.GetCode(ctx, []byte("c1"), now); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated code = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.ClaimReplay(ctx, []byte("c1"), now, 3); !errors.Is(err, store.ErrReplayRefused) || !reflect.DeepEqual(got, want) {
		t.Fatalf("ClaimReplay(migrated code) = %+v, %v; want the code and ErrReplayRefused", got, err)
	}
	got, err := s.RotateRefresh(ctx, store.Rotation{OldRefreshHash: []byte("r1"), NewAccessHash: []byte("a3"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: []byte("r3"), RefreshExpiresAt: now.Add(48 * time.Hour), Now: now})
	if !errors.Is(err, store.ErrReused) || got.ID != "s1" || !got.RevokedAt.Equal(now) || got.Successor != nil {
		t.Fatalf("RotateRefresh(token spent before the migration) = %+v, %v; want the revoked session and ErrReused", got, err)
	}
}

// TestKeepWithinLimitSkipsWriter: RevokeUserSessions with Keep, when no
// more than Keep sessions are rotatable, answers without the writer, so
// that the call after every login costs one read.
func TestKeepWithinLimitSkipsWriter(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		id := strconv.Itoa(i)
		sess := store.Session{ID: "s" + id, UserID: "u1", App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1",
			AccessHash: []byte("a" + id), AccessExpiresAt: at.Add(time.Hour),
			RefreshHash: []byte("r" + id), RefreshExpiresAt: at.Add(48 * time.Hour),
			CreatedAt: at.Add(time.Duration(i) * time.Minute)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	// Hold the writer: a write now waits.
	release := holdWriter(t, s)
	r := store.UserRevocation{UserID: "u1", Family: "wechat", AppID: "wxA", OpenID: "o1", Keep: 3, Now: at.Add(time.Hour)}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	n, err := s.RevokeUserSessions(wctx, r)
	cancel()
	if err != nil || n != 0 {
		t.Fatalf("RevokeUserSessions(keep 3 of 3) with the writer busy = %d, %v; want 0, nil", n, err)
	}
	// Over the limit it needs the writer.
	r.Keep = 2
	wctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.RevokeUserSessions(wctx, r)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RevokeUserSessions(keep 2 of 3) with the writer busy: %v, want a deadline", err)
	}
	release()
	if n, err := s.RevokeUserSessions(ctx, r); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(keep 2 of 3) = %d, %v; want 1, nil", n, err)
	}
	if got, err := s.SessionByID(ctx, "s0"); err != nil || !got.RevokedAt.Equal(r.Now) {
		t.Fatalf("oldest session after the cap = %+v, %v; want it revoked", got, err)
	}
}

// TestMigrationOneUserIndex opens a file of the schema with two indexes of
// a user's sessions: the one index that replaces them holds the sessions
// written before, and the cap, the listing and the erasure find them.
func TestMigrationOneUserIndex(t *testing.T) {
	ctx := t.Context()
	path, db := openBefore(t, 14)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, revoked := range []any{nil, nil, at.Add(time.Minute).UnixMicro()} {
		id := strconv.Itoa(i)
		_, err := db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, app, platform, app_id, open_id,
			access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at, revoked_at)
			VALUES (?, 'u1', 'main', 'wechat', 'wxA', 'o1', ?, ?, ?, ?, ?, ?)`,
			"s"+id, []byte("a"+id), at.Add(time.Hour).UnixMicro(), []byte("r"+id),
			at.Add(48*time.Hour).UnixMicro(), at.Add(time.Duration(i)*time.Second).UnixMicro(), revoked)
		if err != nil {
			t.Fatal(err)
		}
	}
	s := openAfter(t, path, db)
	indexes := strs(t, s.read, `SELECT name FROM sqlite_schema
		WHERE type = 'index' AND tbl_name = 'sessions' AND (name LIKE 'sessions_user%' OR name = 'sessions_by_user')`)
	if !slices.Equal(indexes, []string{"sessions_by_user"}) {
		t.Errorf("indexes of a user's sessions: %q, want sessions_by_user alone", indexes)
	}
	now := at.Add(2 * time.Minute)
	live, err := s.ListUserSessions(ctx, "u1", now)
	if err != nil || len(live) != 2 || live[0].ID != "s1" || live[1].ID != "s0" {
		t.Fatalf("ListUserSessions = %+v, %v; want s1, s0", live, err)
	}
	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Family: "wechat", AppID: "wxA", OpenID: "o1", Keep: 1, Now: now})
	if err != nil || n != 1 {
		t.Fatalf("the cap of 1 revoked %d, %v; want 1", n, err)
	}
	if got, err := s.SessionByID(ctx, "s0"); err != nil || !got.RevokedAt.Equal(now) {
		t.Fatalf("the older session after the cap: %+v, %v; want revoked", got, err)
	}
	if err := s.EraseUserSessions(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s0", "s1", "s2"} {
		if _, err := s.SessionByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s after the erasure: %v, want ErrNotFound", id, err)
		}
	}
}

// TestMigrationBlockedUsers: users blocked before migration 15 are in
// users_blocked, so that their logins still report the block.
func TestMigrationBlockedUsers(t *testing.T) {
	ctx := t.Context()
	path, db := openBefore(t, 15)
	for _, q := range []string{
		`INSERT INTO users (id, created_at, blocked) VALUES ('u1', 1, 1), ('u2', 1, 0)`,
		`INSERT INTO identities (platform, app_id, open_id, user_id, created_at, updated_at)
			VALUES ('wechat', 'wxA', 'o1', 'u1', 1, 1), ('wechat', 'wxA', 'o2', 'u2', 1, 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := openAfter(t, path, db)
	if got := strs(t, s.read, `SELECT id FROM users INDEXED BY users_blocked WHERE blocked`); !slices.Equal(got, []string{"u1"}) {
		t.Errorf("users_blocked holds %q, want u1", got)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, want := range []bool{true, false} {
		open, n := "o"+strconv.Itoa(i+1), strconv.Itoa(i)
		res, err := s.WriteLogin(ctx, store.LoginWrite{
			Identity: store.IdentityUpsert{Family: "wechat", AppID: "wxA", OpenID: open, Now: at},
			Code:     store.ExchangedCode{Hash: []byte("c" + n), App: "main", Family: "wechat", AppID: "wxA", OpenID: open, ExpiresAt: at.Add(time.Minute)},
			Session: store.Session{ID: "s" + n, App: "main", Family: "wechat", AppID: "wxA", OpenID: open,
				AccessHash: []byte("a" + n), RefreshHash: []byte("r" + n), RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at},
		})
		if err != nil || res.Blocked != want {
			t.Errorf("login of %s: Blocked %v, %v; want %v", open, res.Blocked, err, want)
		}
	}
}

// TestMigrationsSortOnDisk: migrations run with temporary files on disk
// (an index built over millions of rows sorts them there, not in the
// process's memory), and the writer is back to memory afterwards.
func TestMigrationsSortOnDisk(t *testing.T) {
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "m.db"), time.Second, false, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	probe := []migrate.Migration{{Version: 1, Name: "0001_probe.sql",
		SQL: "CREATE TABLE seen AS SELECT temp_store FROM pragma_temp_store"}}
	if err := applyMigrations(t.Context(), db, probe, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var during, after int
	if err := db.QueryRowContext(t.Context(), "SELECT temp_store FROM seen").Scan(&during); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(t.Context(), "PRAGMA temp_store").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if during != 1 || after != 2 {
		t.Errorf("temp_store during the migrations %d, after %d; want 1 (file), 2 (memory)", during, after)
	}
}

// strs runs query on db and returns its one column of strings.
func strs(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
