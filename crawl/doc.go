// Package crawl fetches pages with colly and extracts what the pipeline stores.
package crawl
