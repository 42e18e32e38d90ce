package crawl

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/sanitize"
	"github.com/trawlhq/trawl/sitemap"
)

// MaxSitemapRedirects is how many redirects a sitemap fetch follows (each hop dialled through
// the SSRF guard).
const MaxSitemapRedirects = 5

// FetchSitemapJob fetches and parses the sitemap of a sitemap job (message.KindSitemap), the
// way pages are fetched (Fetcher) but following up to MaxSitemapRedirects. The file is read
// within MaxBodyBytes; a gzip file (.xml.gz, recognised by its magic bytes) is decompressed as
// a stream into the parser, at most sitemap.MaxBytes of it.
// The listed page URLs go in Links (not canonicalised: the processor canonicalises and scopes
// them), the children of an index in Sitemaps. A body that is not a sitemap is a permanent
// error; a sitemap cut by a limit keeps the entries read before the cut (Truncated).
func (f *Fetcher) FetchSitemapJob(ctx context.Context, job message.CrawlJob, worker string) message.FetchResult {
	res, _ := f.sitemapJob(ctx, job, worker)
	return res
}

// sitemapJob is FetchSitemapJob, and also reports when the request was written (fetchJob).
func (f *Fetcher) sitemapJob(ctx context.Context, job message.CrawlJob, worker string) (res message.FetchResult, sent time.Time) {
	res = message.FetchResult{
		Envelope: message.NewEnvelope(message.TypeFetchResult),
		Kind:     message.KindSitemap, URLID: job.URLID, TargetID: job.TargetID, URL: job.URL,
		Dispatch: job.Dispatch, Worker: worker,
	}
	req, clock, err := f.request(ctx, job.URL, "application/xml,text/xml;q=0.9,*/*;q=0.5", requestKind{redirects: MaxSitemapRedirects})
	defer func() {
		var took time.Duration
		res.StartedAt, took, sent = clock.stop()
		res.DurationMS = int(took.Milliseconds())
	}()
	fail := func(err error, permanent bool) (message.FetchResult, time.Time) {
		res.Error = sanitize.Text(err.Error())
		res.ErrorClass, res.Permanent = classify(err)
		res.Permanent = res.Permanent || permanent
		return res, sent
	}
	if err != nil {
		return fail(err, true)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(err, false)
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	res.FinalURL = resp.Request.URL.String()
	res.ContentType = sanitize.Text(resp.Header.Get(contentTypeHeader))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, sent
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err, false)
	}
	res.Size = len(body)
	res.Truncated = resp.Header.Get(cutHeader) != ""
	if len(body) > f.cfg.MaxBodyBytes {
		body = body[:f.cfg.MaxBodyBytes]
	}
	var in io.Reader = bytes.NewReader(body)
	var zr *gzip.Reader
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		// Streamed, not expanded into memory (as Gunzip would): sitemap.Parse reads at most
		// sitemap.MaxBytes of the output through its streaming decoder, so a gzip bomb costs
		// CPU up to that bound and next to no memory, whatever the crawler's concurrency.
		if zr, err = gzip.NewReader(in); err != nil {
			return fail(fmt.Errorf("crawl: sitemap %s: gzip: %w", job.URL, err), true)
		}
		defer zr.Close()
		in = zr
	}
	parsed, err := sitemap.Parse(in)
	if err != nil && len(parsed.URLs)+len(parsed.Sitemaps) == 0 {
		return fail(fmt.Errorf("crawl: sitemap %s: %w", job.URL, err), true)
	}
	if zr != nil {
		var one [1]byte
		if n, _ := zr.Read(one[:]); n > 0 {
			res.Truncated = true // more than sitemap.MaxBytes, or left unread after an error
		}
	}
	res.Truncated = res.Truncated || parsed.Truncated || err != nil
	res.Links = parsed.URLs
	res.Sitemaps = parsed.Sitemaps
	return res, sent
}
