package postgres_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mplogin/mplogin/store/storetest"
)

// TestEraseLeavesNoTrace erases a user and then reads every row of every
// table of the schema as text: none may hold the user's openids, unionid
// or id, nor the sealed phone number (bytea reads as hex).
func TestEraseLeavesNoTrace(t *testing.T) {
	ctx := t.Context()
	s, admin, schema := openFresh(t)
	f := storetest.WriteEraseFixture(t, s)
	if err := s.EraseUser(ctx, f.UserID, now); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	rows, err := admin.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	needles := append([]string{f.UnionID, f.UserID, hex.EncodeToString(f.SealedPhone), hex.EncodeToString(f.PhoneLookup)}, f.OpenIDs...)
	var kept bool
	for _, name := range tables {
		rows, err := admin.Query(ctx, `SELECT t::text FROM `+table(schema, name)+` t`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			for _, n := range needles {
				if strings.Contains(l, n) {
					t.Errorf("%s holds %q: %s", name, n, l)
				}
			}
			kept = kept || strings.Contains(l, f.Kept)
		}
	}
	if !kept {
		t.Error("the other user is gone too")
	}
}
