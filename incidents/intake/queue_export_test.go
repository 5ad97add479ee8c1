package intake

// IngestQueued says how many Ingest calls wait for the next batch, so tests
// can line calls up behind a running transaction.
func IngestQueued(s *Service) int { return s.group.lanes.Waiting() }
