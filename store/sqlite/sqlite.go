// Package sqlite is the embedded store.Store: one SQLite file, through the
// cgo-free driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=NORMAL. A commit is then
// written to the WAL without waiting for fsync: it survives the process
// crashing or being killed (kill -9), which is the failure we design for, but
// the last commits may be lost if the machine itself loses power. Checkpoints
// still fsync, so the file is never corrupted. Revocations are the
// exception: RevokeSession, RevokeUserSessions, and a RotateRefresh that
// finds a replay, return only once the WAL holding them is synced
// (durable.go), so that no acknowledged logout is undone. A repeat of a
// refresh token within its grace changes nothing and waits for no sync.
//
// One Store per file: Open locks PATH-lock (flock, where the system has
// it) until Close, and a second Open of the file, from another process or
// this one, fails with ErrInUse. The Store's caches (Options.CacheSessions, Options.FilterCodes)
// could not see another's writes: a logout elsewhere would go unseen.
//
// Open creates the database file, and so its -wal and -shm files, which
// SQLite gives the database file's mode, and the lock file readable and
// writable by their owner alone (0600): they hold openids and token hashes.
// It warns through Options.Logger of an existing database file that group
// or others may read or write.
//
// SQLite has one writer at a time. The store therefore writes through
// exactly one connection, on which one goroutine runs every write, in
// batches (batch.go), so that writers queue in Go instead of failing
// with SQLITE_BUSY against each other, and reads through a separate pool of
// several read-only connections, which WAL lets run beside the writer without
// waiting for it. The read-then-write transactions (UpsertIdentity,
// RotateRefresh, ClaimReplay) begin IMMEDIATE on the writer, so that they
// hold the write lock from their first read, even against another process.
// RevokeUserSessions with a Keep cap reads on the read pool first and takes
// the writer only when there is something to revoke.
//
// Times are stored as INTEGER Unix microseconds in UTC, the zero time as
// NULL; they come back in UTC. Token and code hashes and sealed session keys
// are stored as given, in BLOB columns; no column holds a secret in clear.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mplogin/mplogin/internal/migrate"
	"github.com/mplogin/mplogin/store"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock held elsewhere
	// (another process, a checkpoint) before it fails with
	// store.ErrUnavailable. Zero means 5s.
	BusyTimeout time.Duration
	// Logger receives notices such as applied migrations. Nil discards them.
	Logger *slog.Logger
	// CacheSessions keeps up to this many sessions in memory, read by
	// access hash, so that a session check needs no query; 0 caches none.
	// Revoked sessions are never kept (cache.go). The cache is exact for
	// the writes of this Store (it drops a session when a write changes
	// it); it could not see another process's writes to the same file,
	// which is one reason Open refuses a file another Store has open.
	CacheSessions int
	// FilterCodes keeps, in at most 2 MiB, a filter of the login codes
	// this Store has stored, so that asking for a code never stored (the
	// first use of every code) needs no query. Like CacheSessions, it
	// relies on this Store being the file's only one.
	FilterCodes bool
	// ChangeWindow, when set, keeps in memory the log of changes to
	// sessions whose access token is in date, so that Unchanged can vouch
	// for a sealed access token without a read (changes.go). It is the
	// longest life of an access token: Unchanged vouches for none that
	// lives longer. Like CacheSessions, it relies on this Store being the
	// file's only one. Zero vouches for nothing and leaves the log as it
	// is (triggers still fill it).
	ChangeWindow time.Duration
	// KeepChanges bounds the changes the log keeps in memory: past it, the
	// memory side starts over, and the tokens minted before are checked by
	// a read until they expire. Zero means 100,000 (about 7 MiB).
	KeepChanges int
	// RaiseWriter runs the writer, which every write waits for, on a
	// thread of its own at a higher scheduling priority (nice -10) than
	// the process's other threads, so that on a busy machine it does not
	// wait behind them for a processor while writes queue up. The kernel
	// allows it to a process with CAP_SYS_NICE, or with RLIMIT_NICE
	// allowing -10; otherwise the writer runs as the other threads do, and
	// the Store logs so once, at info. Linux only: elsewhere it does
	// nothing. It changes no thread but the writer's, which ends at Close.
	RaiseWriter bool
}

// Store is a store.Store in one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	read  *sql.DB // read-only connections
	write *sql.DB // exactly one connection, held by tx from Open to Close
	r     readStmts
	// tx is the writer's connection and statements: only the batcher's
	// goroutine runs them, inside its transaction (batch.go).
	tx     wtx
	stmts  []*sql.Stmt // all of the above, to close them
	closed atomic.Bool
	dbFile *os.File      // for the checkpointer's syncs
	cache  *sessionCache // nil without Options.CacheSessions
	codes  *codeFilter   // nil without Options.FilterCodes
	// changes is nil without Options.ChangeWindow.
	changes *changeLog
	ckpt    *checkpointer // checkpoint.go
	rewind  atomic.Bool   // set by ckpt: the writer is to checkpoint before its next batch
	log     *slog.Logger
	wal     *walSyncer // syncs revocations (durable.go)
	lock    *os.File   // PATH-lock, flocked until Close; nil where there is no flock

	// The group-commit batcher (batch.go).
	ops         chan *writeOp
	quit        chan struct{}
	batcherDone chan struct{}
	raise       bool // Options.RaiseWriter
	// writerThread is the id of the batcher's thread once raised, else 0.
	writerThread atomic.Int64
}

var _ store.Store = (*Store)(nil)

const defaultBusyTimeout = 5 * time.Second

// defaultKeepChanges is Options.KeepChanges's default: at 73 bytes a
// change, about 7 MiB.
const defaultKeepChanges = 100_000

// ErrInUse: the database file is open in another Store, of another process
// or of this one (see the package comment).
var ErrInUse = errors.New("database in use")

// Open opens (creating it if need be) the database file at path and applies
// the migrations it lacks. path is a file system path; ":memory:" is not
// supported, since every connection would get a database of its own. While
// another Store has the file open, Open fails with ErrInUse.
func Open(ctx context.Context, path string, opts Options) (_ *Store, err error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: open: need a file path, got %q", path)
	}
	// Absolute, so that the file: URI below has no authority for a relative
	// path to fall into, and a later change of directory moves nothing.
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	// Before anything touches the database file.
	lock, err := lockFile(path + "-lock")
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("sqlite: open %s: %w: another process, or another Store in this one, has it open (lock file %s)",
			path, ErrInUse, path+"-lock")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s := &Store{log: log, lock: lock, raise: opts.RaiseWriter}
	defer func() {
		if err != nil {
			s.unlock()
		}
	}()
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	warnIfShared(log, path)
	if opts.CacheSessions > 0 {
		s.cache = newSessionCache(opts.CacheSessions)
	}
	s.write, err = sql.Open("sqlite", dsn(path, busy, false, 0))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	// The writer migrates first: the first connection switches the file to
	// WAL, and readers must not find tables missing.
	if err := migrateRetrying(ctx, s.write, ms, log, busy); err != nil {
		s.write.Close()
		return nil, s.fail(ctx, "open: migrate", err)
	}

	if opts.ChangeWindow > 0 {
		keep := opts.KeepChanges
		if keep <= 0 {
			keep = defaultKeepChanges
		}
		if s.changes, err = openChangeLog(ctx, s.write, opts.ChangeWindow, keep, time.Now); err != nil {
			s.write.Close()
			return nil, s.fail(ctx, "open: session changes", err)
		}
	}

	s.read, err = sql.Open("sqlite", dsn(path, busy, true, smallCacheKiB))
	if err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Reads mostly spend CPU in this pure-Go SQLite, so one connection per
	// core suffices; at least 4, so that one waiting on the disk does not
	// hold up the rest.
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)

	if err := s.prepare(ctx); err != nil {
		err = s.fail(ctx, "open: prepare", err)
		s.Close()
		return nil, err
	}
	if opts.FilterCodes {
		s.codes = newCodeFilter(filterBits, filterPeriod, filterMargin)
		if err := s.loadCodes(ctx); err != nil {
			err = s.fail(ctx, "open: load codes", err)
			s.Close()
			return nil, err
		}
	}
	// Opened for writing, as some systems require to sync, though nothing
	// writes through it. Closing a descriptor of the file drops the locks
	// SQLite's connections in this process hold on it, so it closes after
	// them (Close).
	if s.dbFile, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	ckdb, err := sql.Open("sqlite", dsn(path, busy, false, smallCacheKiB))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	ckdb.SetMaxOpenConns(1)
	ckdb.SetMaxIdleConns(1)
	// Like dbFile, closed after SQLite's connections.
	if s.wal, err = openWAL(path + "-wal"); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.wal.start()
	s.ckpt = newCheckpointer(ckdb, log, func() { s.rewind.Store(true) }, func() error { return syncData(s.dbFile) })
	s.ckpt.start()
	s.startBatcher()
	return s, nil
}

// migrateRetrying migrates, trying again while the database answers
// "busy" for up to the busy timeout. Processes opening a new file at once
// race to switch it to WAL, and that switch fails at once instead of waiting
// on the busy handler.
func migrateRetrying(ctx context.Context, db *sql.DB, ms []migrate.Migration, log *slog.Logger, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := applyMigrations(ctx, db, ms, log)
		if err == nil || !unavailable(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// smallCacheKiB bounds the page cache of the read connections and of the
// checkpointer's. A connection's cache fills as it reads pages and is never
// emptied, so the process's memory grows until every cache is full. The
// writer keeps SQLite's default: it walks the upper pages of the same
// b-trees at every login. The others read little (a session check reads
// nothing), so at the default their caches went on filling, and the RSS
// with them, for many minutes of steady load (BENCHMARKS.md).
const smallCacheKiB = 256

// dsn returns the data source name for path. Pragmas go in the DSN so that
// every connection the pool opens gets them, not only the first. cacheKiB,
// unless 0, bounds each connection's page cache.
func dsn(path string, busy time.Duration, readOnly bool, cacheKiB int) string {
	q := url.Values{}
	if cacheKiB > 0 {
		q.Add("_pragma", "cache_size(-"+strconv.Itoa(cacheKiB)+")")
	}
	// At least 1ms: busy_timeout(0) would mean "fail at once".
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(max(1, busy.Milliseconds()), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	// Durable against a crash of the process (kill -9); see the package doc.
	q.Add("_pragma", "synchronous(NORMAL)")
	// Checkpoints run on a connection of their own (checkpoint.go).
	q.Add("_pragma", "wal_autocheckpoint(0)")
	// Each write of a batch runs in a savepoint (batch.go), and SQLite keeps
	// the pages a savepoint changes in a sub-journal, by default a temporary
	// file: two more write(2) calls per page, on the writer's critical path.
	// In memory, a batch's sub-journal is at most its dirty pages.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "journal_size_limit("+strconv.Itoa(walSizeLimit)+")")
	if readOnly {
		// Applied after the pragmas above; a stray write on the read pool
		// fails instead of taking the write lock behind the writer's back.
		q.Set("_query_only", "1")
	} else {
		// BEGIN IMMEDIATE: take the write lock when the transaction starts,
		// so that a read-then-write transaction cannot be overtaken between
		// its read and its write by another process.
		q.Set("_txlock", "immediate")
	}
	// A file: URI so that a path containing '?' or '#' stays a path; path is
	// absolute (Open), so it never lands in the URI's authority.
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Ping implements store.Store: a read must answer, and the write lock must
// be obtainable, since a database locked by another process answers reads
// but cannot take a login.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.fail(ctx, "ping", err)
	}
	// A write of nothing: its batch begins IMMEDIATE, which takes the lock.
	return s.inPlainTx(ctx, "ping", func(context.Context, wtx) error { return nil })
}

// Close implements store.Store. Closing twice is not an error.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stopBatcher() // a batch in progress commits first
	if s.wal != nil {
		s.wal.stop() // and its revocations are synced
	}
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.tx.conn != nil {
		errs = append(errs, s.tx.conn.Close())
	}
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.stop())
	}
	// The writer last: the last connection to close checkpoints the WAL
	// into the database file.
	errs = append(errs, s.write.Close())
	if s.dbFile != nil {
		errs = append(errs, s.dbFile.Close())
	}
	if s.wal != nil {
		errs = append(errs, s.wal.close())
	}
	// Last: another Store may open the file from here on.
	errs = append(errs, s.unlock())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// unlock releases the lock on the file, once.
func (s *Store) unlock() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// createPrivate creates the database file, empty, for its owner alone,
// unless it exists: SQLite would create it 0644, and gives its -wal and
// -shm files the database file's mode. An existing file is left as it is
// (and unopened: closing a descriptor of it would drop the locks SQLite
// holds on it in this process).
func createPrivate(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or SQLite will say what is wrong with it
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// warnIfShared warns when group or others may read or write the database
// file (and so its -wal and -shm files, which take its mode).
func warnIfShared(log *slog.Logger, path string) {
	if !modesMeaningful {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o066 == 0 {
		return
	}
	log.Warn("sqlite: group or others may read or write the database file, which holds openids and token hashes; chmod 600 it (its -wal and -shm files follow)",
		"path", path, "mode", fi.Mode().Perm().String())
}

// inTx runs fn in a transaction on the writer and commits it when fn returns
// nil or store.ErrReused: a reuse is a decision whose revocation must stick.
// Writes waiting at the same time share one transaction and one commit
// (batch.go); each runs in a savepoint of its own, so one's failure undoes
// only its own writes.
func (s *Store) inTx(ctx context.Context, op string, fn func(context.Context, wtx) error) error {
	return s.write1(ctx, op, &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// inPlainTx is inTx for a write that fails only when the database does, as
// an insert does: in a batch it needs no savepoint (batch.go).
func (s *Store) inPlainTx(ctx context.Context, op string, fn func(context.Context, wtx) error) error {
	return s.write1(ctx, op, &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1), plain: true})
}

// affected runs exec as a plain write (inPlainTx) and returns how many
// rows it changed. after, if not nil, runs once the write has committed
// (writeOp).
func (s *Store) affected(ctx context.Context, op string, after func(), exec func(context.Context, wtx) (sql.Result, error)) (int64, error) {
	var n int64
	err := s.write1(ctx, op, &writeOp{ctx: ctx, done: make(chan error, 1), plain: true, after: after,
		fn: func(ctx context.Context, tx wtx) error {
			res, err := exec(ctx, tx)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}})
	if err != nil {
		// n is the write's until it has answered: a caller gone before
		// then must not read it.
		return 0, err
	}
	return n, nil
}

// updateOne is affected for a write of one row that must exist: when it
// changed none, it fails with store.ErrNotFound, after its batch instead
// of failing the batch.
func (s *Store) updateOne(ctx context.Context, op string, exec func(context.Context, wtx) (sql.Result, error)) error {
	n, err := s.affected(ctx, op, nil, exec)
	if err == nil && n == 0 {
		err = s.fail(ctx, op, sql.ErrNoRows)
	}
	return err
}

func (s *Store) write1(ctx context.Context, op string, w *writeOp) error {
	select {
	case s.ops <- w:
	case <-ctx.Done():
		return s.fail(ctx, op, ctx.Err())
	case <-s.quit:
		return s.fail(ctx, op, sql.ErrConnDone)
	}
	select {
	case err := <-w.done:
		return s.fail(ctx, op, err)
	case <-ctx.Done():
		// The write may still run: the batcher skips it only if it has
		// not begun (batch.go).
		return s.fail(ctx, op, ctx.Err())
	}
}

// fail wraps err with the operation and classifies it: sql.ErrNoRows becomes
// store.ErrNotFound; anything that means the database did not answer
// (locked for too long, I/O error, closed, past the deadline) also wraps
// store.ErrUnavailable. The context's error is kept in the chain, so that
// errors.Is(err, context.Canceled) holds for a canceled call. fail(ctx, op,
// nil) is nil.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		err = store.ErrNotFound
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrReused),
		errors.Is(err, store.ErrRecentlySpent), errors.Is(err, store.ErrReplayRefused):
	default:
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// The driver reports an interrupted statement in its own words.
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		if s.closed.Load() || unavailable(err) {
			return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// unavailable reports whether err means the database could not be reached
// or did not answer in time, as opposed to refusing the request.
func unavailable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_READONLY:
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone)
}
