package store

// TargetOptions are a target's crawl options added with the crawl-fidelity work (migration
// 00004). targetColumns and scanTarget read them with the rest of the target.
type TargetOptions struct {
	// Sitemaps turns on sitemap discovery (robots.txt Sitemap lines and /sitemap.xml).
	Sitemaps bool
	// IncludeRegex and ExcludeRegex filter discovered URLs (RE2 syntax, matched against the
	// canonical URL); "" means no filter. Validated when the target is created.
	IncludeRegex string
	ExcludeRegex string
}
