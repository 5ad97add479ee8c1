package incidentstest

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/words"
)

// slackState is what sqlstore keeps in slack_confirmations, slack_requests
// and refusal_bursts. It is guarded by the Store's mutex (through begin).
type slackState struct {
	confirmations map[string]*confirmation
	requests      map[string]time.Time // key -> expires
	bursts        map[string]*burst
}

type confirmation struct {
	userID  string
	payload []byte
	expires time.Time
	used    bool
}

type burst struct {
	auditID     int64
	detail      string
	first, last time.Time
	attempts    int
}

func (st *slackState) init() {
	if st.confirmations == nil {
		st.confirmations = map[string]*confirmation{}
		st.requests = map[string]time.Time{}
		st.bursts = map[string]*burst{}
	}
}

// SaveConfirmation keeps a pending confirmation under token until expires.
func (s *Store) SaveConfirmation(ctx context.Context, token, userID string, payload []byte, expires time.Time) error {
	_, done, err := s.begin("SaveConfirmation")
	if err != nil {
		return err
	}
	defer done()
	s.slack.init()
	if _, ok := s.slack.confirmations[token]; ok {
		return fmt.Errorf("save confirmation: token already exists")
	}
	s.slack.confirmations[token] = &confirmation{userID: userID, payload: append([]byte(nil), payload...), expires: expires}
	return nil
}

// FindConfirmation returns a live confirmation; ENOTFOUND when unknown or expired.
func (s *Store) FindConfirmation(ctx context.Context, token string, now time.Time) (string, []byte, bool, error) {
	_, done, err := s.begin("FindConfirmation")
	if err != nil {
		return "", nil, false, err
	}
	defer done()
	s.slack.init()
	c, ok := s.slack.confirmations[token]
	if !ok || !now.Before(c.expires) {
		return "", nil, false, incidents.Errorf(incidents.ENOTFOUND, "No confirmation.")
	}
	return c.userID, append([]byte(nil), c.payload...), c.used, nil
}

// TakeConfirmation marks a live, unused confirmation of userID used.
func (s *Store) TakeConfirmation(ctx context.Context, token, userID string, now time.Time) (bool, error) {
	_, done, err := s.begin("TakeConfirmation")
	if err != nil {
		return false, err
	}
	defer done()
	s.slack.init()
	c, ok := s.slack.confirmations[token]
	if !ok || c.used || c.userID != userID || !now.Before(c.expires) {
		return false, nil
	}
	c.used = true
	return true, nil
}

// FirstRequest records key until expires; true the first time.
func (s *Store) FirstRequest(ctx context.Context, key string, expires time.Time) (bool, error) {
	_, done, err := s.begin("FirstRequest")
	if err != nil {
		return false, err
	}
	defer done()
	s.slack.init()
	if _, ok := s.slack.requests[key]; ok {
		return false, nil
	}
	s.slack.requests[key] = expires
	return true, nil
}

// CountRefusal audits a refusal once per burst, as sqlstore does.
func (s *Store) CountRefusal(ctx context.Context, key string, e *incidents.AuditEntry, window time.Duration) (int, error) {
	d, done, err := s.begin("CountRefusal")
	if err != nil {
		return 0, err
	}
	defer done()
	s.slack.init()
	b, ok := s.slack.bursts[key]
	if !ok || b.last.Before(e.At.Add(-window)) {
		e.ID = d.nextID("audit")
		d.audit = append(d.audit, *e)
		s.slack.bursts[key] = &burst{auditID: e.ID, detail: e.Detail, first: e.At, last: e.At, attempts: 1}
		return 1, nil
	}
	b.attempts++
	b.last = e.At
	e.ID = b.auditID
	for i := range d.audit {
		if d.audit[i].ID == b.auditID {
			d.audit[i].Detail = fmt.Sprintf("%s (%s from %s to %s UTC)", b.detail, words.Count(b.attempts, "attempt"),
				b.first.UTC().Format(time.TimeOnly), e.At.UTC().Format(time.TimeOnly))
		}
	}
	return b.attempts, nil
}

// PruneSlackState drops expired confirmations and request keys, and bursts
// idle for a day.
func (s *Store) PruneSlackState(ctx context.Context, now time.Time) (int64, error) {
	_, done, err := s.begin("PruneSlackState")
	if err != nil {
		return 0, err
	}
	defer done()
	s.slack.init()
	var n int64
	for k, c := range s.slack.confirmations {
		if !now.Before(c.expires) {
			delete(s.slack.confirmations, k)
			n++
		}
	}
	for k, exp := range s.slack.requests {
		if !now.Before(exp) {
			delete(s.slack.requests, k)
			n++
		}
	}
	for k, b := range s.slack.bursts {
		if !b.last.After(now.Add(-24 * time.Hour)) {
			delete(s.slack.bursts, k)
			n++
		}
	}
	return n, nil
}
