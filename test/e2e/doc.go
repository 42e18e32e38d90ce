// Package e2e runs the real Trawl binaries as processes against the real PostgreSQL and
// RabbitMQ, crawling local test sites, and checks what ends up in the database.
package e2e
