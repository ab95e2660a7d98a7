package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Checkpoints off the write path. SQLite's automatic checkpoint runs inside
// the commit that crosses its threshold, on the one writer: every thousand
// pages or so, a commit also copies the WAL into the database file and
// fsyncs both, and every write queued behind it waits. In WAL mode a
// checkpoint can run beside the writer, so the writer's connection has
// automatic checkpoints off, and a connection of its own checkpoints after
// commits, at most once per checkpointEvery. Waiting between checkpoints
// also lets the pages that every batch touches (index roots, the ends of
// time-ordered indexes) be copied once for many commits.

// checkpointEvery paces the checkpoints while writes go on. Between two of
// them the WAL grows by what the writer commits in that time.
const checkpointEvery = 250 * time.Millisecond

// walSizeLimit is what the WAL file is truncated to when SQLite starts it
// over after a checkpoint, so that a burst does not leave a large file.
const walSizeLimit = 64 << 20

type checkpointer struct {
	db   *sql.DB // one connection
	log  *slog.Logger
	kick chan struct{} // buffered 1: commits never wait
	// observe, if set before the first commit, sees each checkpoint's
	// result: frames in the WAL, frames now in the database file.
	observe func(walFrames, checkpointed int, err error)
	quit    chan struct{}
	done    chan struct{}
}

func startCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	c := &checkpointer{
		db:   db,
		log:  log,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go c.run()
	return c
}

// committed tells the checkpointer that the WAL has grown.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		c.checkpoint()
		pace := time.NewTimer(checkpointEvery)
		select {
		case <-pace.C:
		case <-c.quit:
			pace.Stop()
			return
		}
	}
}

// checkpoint copies what it can of the WAL into the database file. PASSIVE
// neither waits for nor blocks the writer and the readers; what a reader
// still needs stays in the WAL for the next one.
func (c *checkpointer) checkpoint() {
	var busy, logFrames, done int
	err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
	if c.observe != nil {
		c.observe(logFrames, done, err)
	}
	if err != nil {
		c.log.Warn("sqlite: checkpoint failed; the WAL grows until one succeeds", "err", err)
		return
	}
	c.log.Debug("sqlite: checkpoint", "wal_frames", logFrames, "checkpointed", done)
}

func (c *checkpointer) stop() error {
	close(c.quit)
	<-c.done
	return c.db.Close()
}
