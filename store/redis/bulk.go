package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/store"
)

// bulkPipeline bounds how many sessions go in one pipeline: its answers
// are read under one ReadTimeout.
const bulkPipeline = 1000

// BulkCreateSessions is for filling a store to measure at scale (the load
// harness's -populate), not for the service: CreateSession for each of
// sessions, pipelined instead of one round trip each. Each session is
// created whole or not at all, as by CreateSession, but the call is not
// one step: on an error, the sessions before the failing one may be
// stored.
func (s *Store) BulkCreateSessions(ctx context.Context, sessions []store.Session) error {
	const op = "bulk create sessions"
	for _, sess := range sessions {
		if err := checkSession(sess); err != nil {
			return fmt.Errorf("redis: %s: %w", op, err)
		}
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	// A pipeline cannot fall back from EVALSHA to EVAL, as Run does.
	if err := createScript.Load(ctx, s.c).Err(); err != nil {
		return s.fail(ctx, op, err)
	}
	for len(sessions) > 0 {
		chunk := sessions[:min(len(sessions), bulkPipeline)]
		sessions = sessions[len(chunk):]
		now := strconv.FormatInt(s.now().UnixMilli(), 10)
		pipe := s.c.Pipeline()
		cmds := make([]*goredis.Cmd, len(chunk))
		for i, sess := range chunk {
			args := append([]any{s.prefix, now, s.graceMs, s.maxTTLms}, sessionArgs(sess)...)
			cmds[i] = createScript.EvalSha(ctx, pipe, nil, args...)
		}
		_, _ = pipe.Exec(ctx) // each command's own error is looked at below
		for _, c := range cmds {
			n, err := c.Int64()
			if err := s.created(ctx, op, n, err); err != nil {
				return err
			}
		}
	}
	return nil
}
