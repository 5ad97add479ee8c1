package incidents

// IngestQueued says how many Ingest calls wait for the next batch, so tests
// can line calls up behind a running transaction.
func IngestQueued(s *Service) int {
	n := 0
	for i := range s.intake.lanes {
		n += s.intake.lanes[i].Waiting()
	}
	return n
}
