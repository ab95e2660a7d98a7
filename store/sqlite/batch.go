package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/mplogin/mplogin/store"
)

// Group commit. SQLite has one writer, and in WAL mode every commit appends
// each page it changed to the log: a login's few rows touch a dozen table
// and index pages, so logins committed one by one write about 100 KB each.
// The batcher runs every write that is waiting in one transaction, each in a
// savepoint of its own, and commits once: the shared pages are written once
// per batch, and each caller still has its answer only after the commit.

// maxBatch bounds how many writes share a commit (and how long the first of
// them waits for the last).
const maxBatch = 128

// Under steady load the queue is often short when a batch starts: at a few
// thousand logins a second, most batches would hold one or two writes, and
// each would write every index's last page on its own (a login touches a
// dozen b-trees: 15 pages of WAL alone, 4 or 5 per login in a batch of 10).
// So when writes are arriving back to back (the last batch ended less than
// gatherWindow before this one's first write came), the batcher waits up to
// gatherWindow for gatherTarget writes before it starts. An idle store
// never waits: a lone write starts at once.
const (
	gatherWindow = time.Millisecond
	gatherTarget = 8
)

type writeOp struct {
	// ctx is the caller's. The write's statements run under it without its
	// cancellation (the batcher skips a write whose caller is gone before
	// it starts): a statement interrupted mid-batch would fail the batch,
	// to be run again, every write in a savepoint; and the driver watches
	// a cancellable context with a goroutine per statement.
	ctx  context.Context
	fn   func(context.Context, wtx) error
	done chan error // buffered: the batcher never waits for a caller
	// plain: fn has no outcome of its own to undo (it fails only when the
	// database does), so in a batch it runs without a savepoint of its own.
	// A savepoint costs two statements and a copy of every page the write
	// touches first, which is most of them. Should a plain write fail, the
	// batch rolls back and runs again, every write in a savepoint.
	plain bool
	// durable, if set, says whether fn's kept result is a revocation, to be
	// answered only once the WAL is on disk (durable.go).
	durable func(result error) bool
	// after, if set, runs on the batcher once fn's writes have committed,
	// before anyone is answered: what memory must learn of them (the
	// session cache). It runs whether or not the caller is still waiting:
	// the writes stand either way.
	after func()
}

// wtx is what a write sees of the batch: the writer's prepared statements
// and its connection, inside the batch's transaction, which the batcher
// begins and ends. The connection is held by the Store, not borrowed from
// the pool for each batch, so that statements are prepared on it once.
type wtx struct {
	*writeStmts
	conn *sql.Conn
}

func (t wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, query, args...)
}

func (t wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, query, args...)
}

func (t wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, query, args...)
}

func (s *Store) startBatcher() {
	s.ops = make(chan *writeOp)
	s.quit = make(chan struct{})
	s.batcherDone = make(chan struct{})
	go s.runBatches()
}

func (s *Store) stopBatcher() {
	if s.quit == nil {
		return
	}
	close(s.quit)
	<-s.batcherDone
}

func (s *Store) runBatches() {
	defer close(s.batcherDone)
	if s.raise {
		s.raiseWriter()
	}
	batch := make([]*writeOp, 0, maxBatch)
	window := time.NewTimer(gatherWindow)
	window.Stop()
	var lastEnd time.Time
	for {
		select {
		case op := <-s.ops:
			batch = append(batch[:0], op)
		case <-s.quit:
			return
		}
		// Whatever queued up while the previous batch committed joins this one.
	drain:
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		if len(batch) < gatherTarget && time.Since(lastEnd) < gatherWindow {
			window.Reset(gatherWindow)
			batch = s.gather(batch, window.C)
			window.Stop()
		}
		if s.rewind.CompareAndSwap(true, false) {
			s.checkpointInWriter()
		}
		s.commitBatch(batch)
		clear(batch)
		lastEnd = time.Now()
	}
}

// writerNice is the nice value Options.RaiseWriter asks for: well ahead of
// the default 0 of every other thread, short of the top of the range.
const writerNice = -10

// raiseWriter puts the batcher on a thread of its own at a higher priority
// (Options.RaiseWriter). Every write waits for this one goroutine: when the
// machine's processors are all busy, each time the kernel makes its thread
// wait a few milliseconds for one, every write queued behind it waits as
// long: much of the logins' latency past their median.
func (s *Store) raiseWriter() {
	tid, err := raiseThread()
	if errors.Is(err, errors.ErrUnsupported) {
		s.log.Debug("sqlite: the writer runs at the priority of the process's other threads", "err", err)
		return
	}
	if err != nil {
		s.log.Info("sqlite: the writer runs at the priority of the process's other threads; "+
			"give the process CAP_SYS_NICE for it to run ahead of them under load", "err", err)
		return
	}
	s.writerThread.Store(int64(tid))
	s.log.Debug("sqlite: the writer runs at a higher priority", "thread", tid, "nice", writerNice)
}

// gather adds writes to batch until it holds gatherTarget, the window
// closes or the store closes (the batch still commits: its callers wait).
func (s *Store) gather(batch []*writeOp, window <-chan time.Time) []*writeOp {
	for len(batch) < gatherTarget {
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		case <-window:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// keeps reports whether fn's result leaves its writes in place: nil, or a
// refresh-token reuse, whose revocation must stick.
func keeps(err error) bool { return err == nil || errors.Is(err, store.ErrReused) }

func (s *Store) commitBatch(batch []*writeOp) {
	if !s.runBatch(batch, false) {
		s.runBatch(batch, true)
	}
}

// runBatch runs the batch in one transaction and commits it. Unless
// careful, plain writes run without savepoints; if one of them fails,
// runBatch rolls back and returns false without answering anyone, and the
// batch must run again, carefully.
func (s *Store) runBatch(batch []*writeOp, careful bool) bool {
	results := make([]error, len(batch))
	finish := func(commitErr error) bool {
		for i, op := range batch {
			switch {
			case commitErr != nil && keeps(results[i]):
				op.done <- commitErr
			case commitErr == nil && keeps(results[i]) && op.durable != nil && op.durable(results[i]):
				s.wal.answerAfterSync(op, results[i])
			default:
				op.done <- results[i]
			}
		}
		return true
	}
	// Not tied to one caller's context: the transaction serves them all.
	bg := context.Background()
	tx := s.tx
	if _, err := tx.begin.ExecContext(bg); err != nil {
		return finish(err)
	}
	rollback := func() { _, _ = tx.rollback.ExecContext(bg) }
	commit := func() bool {
		var changed []pendingChange
		if s.changes != nil {
			// Read before the commit, applied after it and before anyone is
			// answered (changes.go).
			var err error
			if changed, err = s.changes.tail(tx); err != nil {
				rollback()
				return finish(err)
			}
		}
		if _, err := tx.commit.ExecContext(bg); err != nil {
			// A COMMIT that failed may leave the transaction open
			// (SQLITE_BUSY): it must not carry over into the next batch.
			rollback()
			return finish(err)
		}
		if s.changes != nil {
			s.changes.apply(changed)
		}
		if s.ckpt != nil {
			s.ckpt.committed()
		}
		for i, op := range batch {
			if op.after != nil && keeps(results[i]) {
				op.after()
			}
		}
		return finish(nil)
	}
	run := func(op *writeOp) error { return op.fn(context.WithoutCancel(op.ctx), tx) }
	if len(batch) == 1 {
		if results[0] = batch[0].ctx.Err(); results[0] == nil {
			results[0] = run(batch[0])
		}
		if !keeps(results[0]) {
			rollback()
			return finish(nil)
		}
		return commit()
	}
	for i, op := range batch {
		if results[i] = op.ctx.Err(); results[i] != nil {
			continue
		}
		if op.plain && !careful {
			if results[i] = run(op); !keeps(results[i]) {
				rollback()
				return false
			}
			continue
		}
		if _, err := tx.savepoint.ExecContext(bg); err != nil {
			results[i] = err
			continue
		}
		results[i] = run(op)
		if !keeps(results[i]) {
			if _, err := tx.rollbackTo.ExecContext(bg); err != nil {
				// The transaction can no longer be trusted: nothing commits.
				rollback()
				return finish(err)
			}
		}
		if _, err := tx.release.ExecContext(bg); err != nil {
			rollback()
			return finish(err)
		}
	}
	return commit()
}

// checkpointInWriter checkpoints on the writer's connection between two
// batches, so that the next batch starts the WAL over (checkpoint.go). It
// never waits for readers: if one still needs the WAL, the WAL goes on
// growing until the checkpointer asks again.
func (s *Store) checkpointInWriter() {
	logFrames, done, err := walCheckpoint(s.tx.conn)
	if err != nil {
		s.log.Warn("sqlite: checkpoint on the writer failed", "err", err)
		return
	}
	s.log.Debug("sqlite: checkpoint on the writer", "wal_frames", logFrames, "checkpointed", done)
}
