package robots

import "testing"

func TestNoFollow(t *testing.T) {
	cases := []struct {
		values []string
		header bool
		want   bool
	}{
		{nil, false, false},
		{[]string{"index, follow"}, false, false},
		{[]string{"noindex"}, false, false},
		{[]string{"nofollow"}, false, true},
		{[]string{"NoIndex , NOFOLLOW"}, false, true},
		{[]string{"none"}, false, true},
		{[]string{"noarchive", "nofollow"}, false, true}, // several meta tags
		{[]string{"nofollowx"}, false, false},
		// X-Robots-Tag: with or without a user agent.
		{[]string{"nofollow"}, true, true},
		{[]string{"trawlbot: nofollow"}, true, true},
		{[]string{"TrawlBot: noindex, nofollow"}, true, true},
		{[]string{"otherbot: nofollow"}, true, false},
		{[]string{"otherbot: nofollow", "noarchive"}, true, false},
		{[]string{"otherbot: noindex", "none"}, true, true},
		{[]string{"unavailable_after: 25 Jun 2010 15:00:00 PST"}, true, false},
		{[]string{"max-snippet: 20, nofollow"}, true, true},
		{[]string{"noindex, max-snippet: 20"}, true, false},
		// A meta tag's content has no user agent: the colon is not special there.
		{[]string{"otherbot: nofollow"}, false, false},
	}
	for _, c := range cases {
		if got := NoFollow(c.values, "TrawlBot", c.header); got != c.want {
			t.Errorf("NoFollow(%q, header %v) = %v, want %v", c.values, c.header, got, c.want)
		}
	}
}
