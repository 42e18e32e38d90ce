package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// This file holds what the read queries share: limits, keyset cursors and argument lists.
// The read queries (Overview, TargetList, Pages, Search, PageDetail, Retrying and the others,
// each in the file of the table it reads) read through an index and touch at most a page of
// rows plus small aggregates: the dashboard renders each page in a few milliseconds with
// millions of URLs (see BenchmarkDashboardQueries). Optional filters are added to the SQL text
// rather than written as "$1 = 0 OR col = $1", so that every variant gets a plan that uses its
// index. Lists are keyset-paginated; a missing target or URL is ErrNotFound.

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
