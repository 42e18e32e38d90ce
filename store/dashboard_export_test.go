package store

// SetSearchProbe makes s treat more than n matches as a common query, so that tests reach
// both of Search's plans with a few pages.
func SetSearchProbe(s *Store, n int) { s.searchProbe = n }
