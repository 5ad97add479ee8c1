package intake

// IngestQueued says how many Ingest calls wait for the next batch, so tests
// can line calls up behind a running transaction.
func IngestQueued(s *Service) int {
	n := 0
	for i := range s.group.lanes {
		n += s.group.lanes[i].Waiting()
	}
	return n
}
