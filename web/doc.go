// Package web is the dashboard: an echo server with the JSON API under /api/ and the HTML
// pages. Handlers are thin: they validate input, call the store and render.
package web
