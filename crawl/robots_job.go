package crawl

import (
	"context"
	"time"

	"github.com/trawlhq/trawl/message"
)

// robotsJob fetches the robots.txt of a robots job (message.KindRobots) and describes it as a
// FetchResult: the file is in Text (at most robots.MaxBytes+1 bytes), Agent carries the
// User-Agent whose rules apply. The processor stores it on the host, shared by every replica.
// It also reports when the request was written (fetchJob).
func (f *Fetcher) robotsJob(ctx context.Context, job message.CrawlJob, worker string) (message.FetchResult, time.Time) {
	rf := f.FetchRobots(ctx, job.URL)
	return message.FetchResult{
		Envelope: message.NewEnvelope(message.TypeFetchResult),
		Kind:     message.KindRobots, URL: job.URL, Worker: worker, Agent: f.cfg.UserAgent,
		FinalURL: rf.FinalURL, Status: rf.Status, Text: string(rf.Body), Size: len(rf.Body),
		StartedAt: rf.StartedAt, DurationMS: int(rf.Duration.Milliseconds()),
		Error: rf.Error, ErrorClass: rf.ErrorClass,
		// A refused address (SSRF guard) or a bad URL will not get better by retrying: the
		// host's URLs fail at once, with that class.
		Permanent: rf.ErrorClass == "blocked" || rf.ErrorClass == "invalid_url",
	}, rf.sent
}
