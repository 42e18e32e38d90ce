package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestDeadLetterPagesAndFilters(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tid := int64(9)
	var ids []int64
	for i := range 5 {
		d := store.DeadLetter{Fingerprint: fmt.Sprint("fp", i), Reason: "rejected", Host: "a.test", Body: []byte{byte(i)}}
		if i%2 == 0 {
			d.TargetID, d.Reason = &tid, "delivery_limit"
		}
		id, inserted, err := s.InsertDeadLetter(t.Context(), d)
		if err != nil || !inserted {
			t.Fatalf("insert %d: %t %v", i, inserted, err)
		}
		ids = append(ids, id)
	}
	var seen []int64
	f := store.DeadLetterFilter{Limit: 2}
	for {
		page, err := s.DeadLetters(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d rows with limit 2", len(page))
		}
		for _, d := range page {
			seen = append(seen, d.ID)
		}
		f.AfterID = page[len(page)-1].ID
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("paged ids %v, want %v", seen, ids)
	}
	byTarget, err := s.DeadLetters(t.Context(), store.DeadLetterFilter{TargetID: tid, Reason: "delivery_limit"})
	if err != nil || len(byTarget) != 3 {
		t.Fatalf("filtered list = %d rows, %v; want 3", len(byTarget), err)
	}
	if err := s.DeleteDeadLetter(t.Context(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeadLetter(t.Context(), ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if _, _, err := s.InsertDeadLetter(t.Context(), store.DeadLetter{}); err == nil {
		t.Fatal("dead letter without fingerprint accepted")
	}
	if n, err := s.PurgeDeadLetters(t.Context(), store.DeadLetterFilter{Host: "a.test", Reason: "rejected"}); err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2", n, err)
	}
}
