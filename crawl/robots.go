package crawl

import (
	"context"
	"io"
	"time"

	"github.com/trawlhq/trawl/robots"
	"github.com/trawlhq/trawl/sanitize"
)

// MaxRobotsRedirects is how many redirects FetchRobots follows (RFC 9309 section 2.3.1.2:
// at least five).
const MaxRobotsRedirects = 5

// RobotsFetch is the outcome of fetching a robots.txt file.
type RobotsFetch struct {
	// Status is the final HTTP status (after redirects), or 0 when no response arrived.
	Status int
	// Body is the file, at most robots.MaxBytes+1 bytes (so that robots.Parse can tell it was
	// cut).
	Body []byte
	// FinalURL is the URL the body came from.
	FinalURL string
	// Redirects is the number of redirects followed.
	Redirects int
	// Error and ErrorClass describe a failure without a response.
	Error      string
	ErrorClass string
	StartedAt  time.Time
	Duration   time.Duration
	sent       time.Time // clock.stop
}

// Robots returns the rules the fetch means, as RFC 9309 says: parsed for a 2xx, allow-all for
// a 4xx or too many redirects, disallow-all for a 5xx or a network error.
func (r RobotsFetch) Robots() *robots.Robots { return robots.FromStatus(r.Status, r.Body) }

// FetchRobots fetches a robots.txt URL the way pages are fetched (Fetcher), with two
// differences: redirects are followed (up to MaxRobotsRedirects, across hosts too: every hop is
// dialled through the SSRF guard), and the body limit is robots.MaxBytes whatever MaxBodyBytes
// says. It is not fetched by colly, whose own robots handling caches failures forever, but
// through the same client.
func (f *Fetcher) FetchRobots(ctx context.Context, robotsURL string) (res RobotsFetch) {
	res.FinalURL = robotsURL
	req, clock, err := f.request(ctx, robotsURL, "text/plain,*/*;q=0.5", requestKind{maxBody: robots.MaxBytes, redirects: MaxRobotsRedirects})
	defer func() { res.StartedAt, res.Duration, res.sent = clock.stop() }()
	if err != nil {
		return failRobots(res, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return failRobots(res, err)
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	res.FinalURL = resp.Request.URL.String()
	for r := resp.Request; r.Response != nil; r = r.Response.Request {
		res.Redirects++
	}
	if res.Status >= 200 && res.Status < 300 {
		res.Body, err = io.ReadAll(resp.Body)
		if err != nil {
			return failRobots(RobotsFetch{FinalURL: res.FinalURL, Redirects: res.Redirects}, err)
		}
	}
	return res
}

func failRobots(res RobotsFetch, err error) RobotsFetch {
	res.Status = 0
	res.Body = nil
	res.Error = sanitize.Text(err.Error())
	res.ErrorClass, _ = classify(err)
	return res
}
