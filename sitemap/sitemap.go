// Package sitemap parses sitemaps (sitemaps.org protocol 0.9): <urlset> files, <sitemapindex>
// files and plain-text sitemaps (one URL per line). It is pure: the crawler fetches and, for
// .xml.gz files, decompresses within a bound (crawl.Gunzip) before calling Parse.
package sitemap

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxURLs is the most URLs one sitemap may list (the protocol's limit); more are ignored and
// the result flagged truncated.
const MaxURLs = 50_000

// MaxBytes is the largest uncompressed sitemap read (the protocol allows 50 MB).
const MaxBytes = 50 << 20

// maxLocBytes bounds one <loc>; longer ones are skipped.
const maxLocBytes = 8 << 10

// Result is a parsed sitemap.
type Result struct {
	// Index is true for a <sitemapindex>: Sitemaps lists its children, URLs is empty.
	Index bool
	// URLs are the <url><loc> values (or the lines of a text sitemap), trimmed, in order.
	URLs []string
	// Sitemaps are the <sitemap><loc> values of an index.
	Sitemaps []string
	// Truncated is set when more than MaxURLs entries were listed.
	Truncated bool
}

// ErrNotSitemap is returned for XML whose root is neither urlset nor sitemapindex.
var ErrNotSitemap = errors.New("sitemap: not a sitemap")

// Parse reads a sitemap. A body that does not start with '<' is read as a text sitemap.
// Malformed XML after some entries keeps the entries read so far and returns them with the
// error.
//
// Only a <loc> that is a child of a <url> (or, in an index, <sitemap>) entry, which is itself
// a child of the root, and that is in the root element's XML namespace, in none, or in the
// sitemaps.org one is a page (or a child sitemap). Extensions put their own elements inside
// entries in their own namespaces, and some of those are called loc too: Google's image
// sitemaps list <image:image><image:loc>, the URL of an image, not of a page. The root's
// namespace, rather than a fixed one, is what an entry may share, because besides the
// sitemaps.org namespace (http://www.sitemaps.org/schemas/sitemap/0.9) sitemaps are common
// with none at all, with an https:// or trailing-slash variant of it, or with Google's older
// 0.84 one. Extension
// elements are not read: image and video URLs (image:loc, video:content_loc,
// video:player_loc, video:thumbnail_loc) are media, not pages; news: lists no URLs; and
// xhtml:link hreflang alternates name pages that the protocol has the sitemap list in their
// own <url> entries too (and that are usually on other hosts). Element names are compared
// case-insensitively.
func Parse(r io.Reader) (Result, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxBytes))
	if b, err := peekNonSpace(br); err != nil {
		return Result{}, fmt.Errorf("sitemap: empty: %w", err)
	} else if b != '<' {
		return parseText(br)
	}
	dec := xml.NewDecoder(&runLimiter{r: br})
	dec.Strict = false
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	var res Result
	var root, space string // the root element's local name (lower case) and namespace
	// depth is the element depth of the next start tag: 0 for the root, 1 for entries, 2 for
	// an entry's children. inEntry and inLoc say whether the open element at depth 1 is an
	// entry and the one at depth 2 its loc.
	depth := 0
	var inEntry, inLoc bool
	var loc strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if root == "" {
				return Result{}, fmt.Errorf("sitemap: %w", err)
			}
			return res, fmt.Errorf("sitemap: malformed after %d entries: %w", len(res.URLs)+len(res.Sitemaps), err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			ours := t.Name.Space == space || t.Name.Space == "" || isSitemapNamespace(t.Name.Space)
			switch {
			case depth == 0 && root == "":
				root, space = name, t.Name.Space
				if root != "urlset" && root != "sitemapindex" {
					return Result{}, fmt.Errorf("%w: root element <%s>", ErrNotSitemap, t.Name.Local)
				}
				res.Index = root == "sitemapindex"
			case depth == 1 && ours && (name == "url" && !res.Index || name == "sitemap" && res.Index):
				inEntry = true
			case depth == 2 && ours && inEntry && name == "loc":
				inLoc = true
				loc.Reset()
			}
			depth++
		case xml.CharData:
			if inLoc && loc.Len() <= maxLocBytes {
				loc.Write(t)
			}
		case xml.EndElement:
			depth--
			switch depth {
			case 2:
				if inLoc {
					inLoc = false
					if loc.Len() <= maxLocBytes {
						res.add(strings.TrimSpace(loc.String()))
					}
				}
			case 1:
				inEntry = false
			}
		}
	}
	if root == "" {
		return Result{}, fmt.Errorf("%w: no root element", ErrNotSitemap)
	}
	return res, nil
}

// isSitemapNamespace reports whether ns is the sitemaps.org namespace, or a variant of it
// (https, a trailing slash, another version).
func isSitemapNamespace(ns string) bool {
	return strings.Contains(strings.ToLower(ns), "sitemaps.org/schemas/sitemap")
}

// maxRunBytes bounds a run of bytes without '<' or '>': encoding/xml buffers a whole text
// node (or tag) in memory, so a sitemap made of one huge <loc> would otherwise cost its whole
// size. Real sitemaps have runs of at most a few KiB (a URL is at most 2,048 characters).
const maxRunBytes = 64 << 10

// ErrRunTooLong is returned for XML with a text node or tag longer than maxRunBytes.
var ErrRunTooLong = errors.New("sitemap: text node or tag too long")

// runLimiter fails a read once maxRunBytes pass without a '<' or '>'.
type runLimiter struct {
	r   io.Reader
	run int
}

func (l *runLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if c == '<' || c == '>' {
			l.run = 0
			continue
		}
		if l.run++; l.run > maxRunBytes {
			return i, ErrRunTooLong
		}
	}
	return n, err
}

func (r *Result) add(u string) {
	if u == "" {
		return
	}
	if len(r.URLs)+len(r.Sitemaps) >= MaxURLs {
		r.Truncated = true
		return
	}
	if r.Index {
		r.Sitemaps = append(r.Sitemaps, u)
	} else {
		r.URLs = append(r.URLs, u)
	}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
		case 0xEF: // UTF-8 BOM
			if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
				_, _ = br.Discard(3)
				continue
			}
			return b[0], nil
		default:
			return b[0], nil
		}
	}
}

func parseText(br *bufio.Reader) (Result, error) {
	var res Result
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), maxLocBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
			res.add(line)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return res, fmt.Errorf("sitemap: text: %w", err)
	}
	return res, nil
}
