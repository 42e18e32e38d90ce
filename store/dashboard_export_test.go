package store

// SetSearchProbe makes s check only the newest n pages before it turns to the GIN index, so
// that tests reach both of Search's steps with a few pages.
func SetSearchProbe(s *Store, n int) { s.searchProbe = n }
