// Package deploy holds tests for the container deployment files.
package deploy
