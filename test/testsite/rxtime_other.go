//go:build !linux

package testsite

import (
	"net/http"
	"net/http/httptest"
	"time"
)

// StampArrivals does nothing off Linux: handlers' Arrival is the time they ask.
func StampArrivals(*httptest.Server) {}

// Arrival is the time now off Linux.
func Arrival(*http.Request) time.Time { return time.Now() }
