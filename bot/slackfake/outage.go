package slackfake

import (
	"net/http"
	"strconv"
	"time"
)

// Failure is one answer Slack gives during an outage: an HTTP status, and
// for a 429 the Retry-After it asks for, in seconds.
type Failure struct {
	Status     int
	RetryAfter int
}

// outage is Slack failing every Web API call until end (zero: until Recover).
type outage struct {
	failures []Failure
	next     int
	end      time.Time
}

// Outage makes every Web API call fail for d (0: until Recover), answering
// failures in turn, round and round: Outage(time.Minute, Failure{Status:
// 500}, Failure{Status: 429, RetryAfter: 2}) answers 500, then 429 with
// Retry-After: 2, then 500 … Nothing a failed call asks for happens; each is
// recorded with Error "http_500" or "ratelimited". Response URLs and file
// uploads are not affected. It returns when Slack answers again (zero for
// an outage until Recover).
func (s *Server) Outage(d time.Duration, failures ...Failure) time.Time {
	if len(failures) == 0 {
		failures = []Failure{{Status: http.StatusInternalServerError}}
	}
	o := &outage{failures: failures}
	if d > 0 {
		o.end = time.Now().Add(d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = o
	return o.end
}

// Recover ends an outage now and returns the time it ended.
func (s *Server) Recover() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = nil
	return time.Now()
}

// takeOutage returns the failure to answer now, if Slack is out.
func (s *Server) takeOutage(now time.Time) (Failure, bool) {
	o := s.outage
	if o == nil {
		return Failure{}, false
	}
	if !o.end.IsZero() && !now.Before(o.end) {
		s.outage = nil
		return Failure{}, false
	}
	f := o.failures[o.next%len(o.failures)]
	o.next++
	return f, true
}

// answerOutage answers a call that failed in an outage, as Slack's edge
// does: a 429 with Retry-After and Slack's ratelimited body, anything else
// its status and a body that is not the API's JSON.
func answerOutage(w http.ResponseWriter, f Failure, call *Call) {
	if f.Status == http.StatusTooManyRequests {
		call.Error = "ratelimited"
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		writeJSON(w, http.StatusTooManyRequests, obj{"ok": false, "error": "ratelimited"})
		return
	}
	call.Error = "http_" + strconv.Itoa(f.Status)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte("<html><body>Slack is having trouble</body></html>"))
}
