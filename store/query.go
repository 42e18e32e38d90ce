package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// This file holds what the read queries share: limits, keyset cursors and argument lists.
// The read queries (Overview, TargetList, Pages, Search, PageDetail, Retrying and the others,
// each in the file of the table it reads) read through an index and touch at most a page of
// rows plus small aggregates: the dashboard renders each page in a few milliseconds with
// millions of URLs (see BenchmarkDashboardQueries). Optional filters are added to the SQL text
// rather than written as "$1 = 0 OR col = $1", so that every variant gets a plan that uses its
// index. Lists are keyset-paginated both ways and can count their rows (Total); a missing
// target or URL is ErrNotFound.

// ErrInvalidQuery marks a dashboard query with bad parameters (an unknown sort column, a
// malformed cursor or status filter). Handlers answer 400 for it.
var ErrInvalidQuery = errors.New("store: invalid query")

func clampLimit(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	}
	return limit
}

// cursor is the opaque keyset position of a listing: the last row's sort key and id.
type cursor struct {
	K  json.RawMessage `json:"k,omitempty"`
	ID int64           `json:"id"`
}

func encodeCursor(key any, id int64) string {
	var raw json.RawMessage
	if key != nil {
		raw, _ = json.Marshal(key) // keys are strings, numbers and times: never fails
	}
	b, _ := json.Marshal(cursor{K: raw, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes s into its id and, when key is non-nil, its sort key.
func decodeCursor(s string, key any) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	if key != nil {
		if len(c.K) == 0 || json.Unmarshal(c.K, key) != nil {
			return 0, fmt.Errorf("%w: cursor does not match the sort order", ErrInvalidQuery)
		}
	}
	return c.ID, nil
}

// args collects query parameters and hands out their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// Keyset pages go both ways. A listing has one order; a page after a cursor reads on in that
// order, a page before a cursor reads back against it (seek) and is turned round (pageOf).
// Each cursor is a row's sort key and id, so rows with equal keys (ties) are neither skipped
// nor repeated in either direction. See docs/adr/0058-lists-page-both-ways-with-a-bounded-total.md.

// seek returns the row comparison and the ORDER BY direction of a page: desc is the listing's
// order, backward a page before a cursor, read in the opposite order.
func seek(desc, backward bool) (op, dir string) {
	if desc != backward {
		return "<", "DESC"
	}
	return ">", "ASC"
}

// pageOf cuts the rows read for a page (limit+1 asked for) to limit, in the listing's order,
// and says which neighbours exist. Reading on (not backward), there is a previous page when the
// page started at a cursor; reading back, there is always a next one: the cursor's own row.
func pageOf[T any](rows []T, limit int, backward, fromCursor bool) (page []T, prev, next bool) {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if backward {
		slices.Reverse(rows)
		return rows, more, true
	}
	return rows, fromCursor, more
}

// cursors encodes the Prev and Next cursors of a page from its first and last rows' keys.
func cursors[T any](rows []T, prev, next bool, key func(T) (any, int64)) (prevCursor, nextCursor string) {
	if len(rows) == 0 {
		return "", ""
	}
	if prev {
		prevCursor = encodeCursor(key(rows[0]))
	}
	if next {
		nextCursor = encodeCursor(key(rows[len(rows)-1]))
	}
	return prevCursor, nextCursor
}

// bothCursors refuses a page asked for both after and before a cursor.
func bothCursors(after, before string) error {
	if after != "" && before != "" {
		return fmt.Errorf("%w: after and before cannot be used together", ErrInvalidQuery)
	}
	return nil
}

// CountCap is how many rows a listing's total counts exactly. Past it counting costs a read of
// every row, so the total is the planner's estimate instead (Total.Estimated).
const CountCap = 10_000

// Total is how many rows a listing has, all pages together.
type Total struct {
	N int64
	// Estimated is true when more than CountCap rows match: N is then the planner's estimate
	// (never less than CountCap+1), to be shown as "about N".
	Estimated bool
}

// countRows counts the rows of "SELECT 1 FROM from WHERE where" with args a: exactly up to the
// cap (an index scan of at most CountCap+1 entries), else by the planner's estimate.
func (s *Store) countRows(ctx context.Context, from, where string, a []any) (Total, error) {
	capN := CountCap
	if s.countCap > 0 {
		capN = s.countCap
	}
	sel := `SELECT 1 FROM ` + from + ` WHERE ` + where
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (`+sel+` LIMIT `+strconv.Itoa(capN+1)+`) c`, a...).Scan(&n); err != nil {
		return Total{}, err
	}
	if n <= int64(capN) {
		return Total{N: n}, nil
	}
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	var raw []byte
	if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sel, a...).Scan(&raw); err != nil {
		return Total{}, err
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
		return Total{}, fmt.Errorf("explain: unexpected plan %.200q", raw)
	}
	return Total{N: max(int64(plan[0].Plan.Rows), int64(capN)+1), Estimated: true}, nil
}
