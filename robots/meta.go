package robots

import "strings"

// valued are the robots directives that take a value after a colon, so that
// "unavailable_after: …" or "max-snippet: 20" is not read as a user-agent prefix.
var valued = map[string]bool{
	"unavailable_after": true, "max-snippet": true, "max-image-preview": true, "max-video-preview": true,
}

// NoFollow reports whether robots directives tell the crawler whose product token is token
// not to follow a page's links: "nofollow" or "none", case-insensitive, in a comma-separated
// list (RFC 9309 leaves page-level directives to the robots meta tag and X-Robots-Tag
// conventions, which these follow).
//
// values are the contents of the page's robots meta tags (<meta name="robots"> and
// <meta name="TOKEN">) or, with header set, the values of its X-Robots-Tag headers. A header
// value may start with a user agent and a colon ("otherbot: nofollow"); it then applies only
// when that agent is token.
func NoFollow(values []string, token string, header bool) bool {
	for _, v := range values {
		if header {
			if agent, rest, ok := strings.Cut(v, ":"); ok {
				agent = strings.ToLower(strings.TrimSpace(agent))
				if !valued[agent] && !strings.Contains(agent, ",") {
					if !strings.EqualFold(agent, token) {
						continue // for another crawler
					}
					v = rest
				}
			}
		}
		for d := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(d)) {
			case "nofollow", "none":
				return true
			}
		}
	}
	return false
}
