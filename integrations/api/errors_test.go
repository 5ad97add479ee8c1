package api_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/api"
)

// Every HTTP surface answers a domain error with this one table; the web view
// once had its own, which made a conflict a 500 there.
func TestStatusOfIsTheOneTable(t *testing.T) {
	for code, want := range map[string]int{
		incidents.ECONFLICT: 409, incidents.EINVALID: 422, incidents.ENOTFOUND: 404,
		incidents.EFORBIDDEN: 403, incidents.EUNAUTHORIZED: 401, incidents.EUNAVAILABLE: 503, incidents.EINTERNAL: 500,
	} {
		if got := api.StatusOf(incidents.Errorf(code, "x")); got != want {
			t.Errorf("%s: %d, want %d", code, got, want)
		}
	}
	if got := api.StatusOf(errors.New("plain")); got != 500 {
		t.Errorf("an error that is not the domain's: %d, want 500", got)
	}
	if got := api.StatusOf(nil); got != 0 {
		t.Errorf("nil: %d, want 0", got)
	}
}

// An internal error's detail stays in the log; the caller reads the safe message.
func TestWriteDomainErrorHidesInternalDetail(t *testing.T) {
	var log strings.Builder
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
	api.WriteDomainError(w, newLogger(&log), r, errors.New("pq: connection refused on 10.0.0.5"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "10.0.0.5") || !strings.Contains(w.Body.String(), "Internal error.") {
		t.Errorf("answer %d %s, want 500 with the safe message only", w.Code, w.Body)
	}
	if !strings.Contains(log.String(), "10.0.0.5") {
		t.Errorf("log %q lacks the cause", log.String())
	}
}
