package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trawlhq/trawl/test/testenv"
)

// TestPagesUseLZ4 checks migration 00005: the large columns of pages are compressed with lz4
// (cheaper than pglz while persisting batches), and a page written through ApplyResults is
// stored lz4-compressed and reads back intact. On a server built without lz4 the migration
// must still apply and leave the default compression.
func TestPagesUseLZ4(t *testing.T) {
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	want := "l"
	if _, err := c.Exec(ctx, `CREATE TEMP TABLE lz4_probe (x text COMPRESSION lz4)`); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
			t.Fatalf("probe lz4 support: %v", err)
		}
		want = "" // server without lz4: the migration keeps the default
	}
	for _, col := range []string{"body_text", "links"} {
		var got string
		if err := c.QueryRow(ctx, `SELECT attcompression::text FROM pg_attribute
			WHERE attrelid = 'pages'::regclass AND attname = $1`, col).Scan(&got); err != nil {
			t.Fatalf("attcompression of %s: %v", col, err)
		}
		if got != want {
			t.Errorf("pages.%s compression = %q, want %q", col, got, want)
		}
	}

	tg := newTarget(t, s, "http://example.test/", nil)
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 {
		t.Fatalf("dispatched %d jobs, want 1", len(jobs))
	}
	r := ok(jobs[0])
	r.Text = strings.Repeat("compressible page text ", 2000) // 46 KB: compressed inline or toasted
	if a := apply(t, s, r); a.Applied != 1 {
		t.Fatalf("applied %d, want 1", a.Applied)
	}
	var method *string
	var text string
	if err := c.QueryRow(ctx, `SELECT pg_column_compression(body_text), body_text FROM pages WHERE url_id = $1 AND target_id = $2`,
		jobs[0].URLID, tg.ID).Scan(&method, &text); err != nil {
		t.Fatalf("read page: %v", err)
	}
	if text != r.Text {
		t.Errorf("body_text read back has %d bytes, want %d", len(text), len(r.Text))
	}
	wantMethod := "lz4"
	if want == "" {
		wantMethod = "pglz"
	}
	if method == nil {
		t.Errorf("pg_column_compression(body_text) = NULL (stored uncompressed), want %s", wantMethod)
	} else if *method != wantMethod {
		t.Errorf("pg_column_compression(body_text) = %s, want %s", *method, wantMethod)
	}
}
