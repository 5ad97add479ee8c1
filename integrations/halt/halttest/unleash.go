package halttest

import (
	"net/http"
	"sync"
	"testing"
)

// Unleash fakes the Unleash admin API for one feature toggle in one
// environment: POST …/environments/{env}/on|off and GET of the feature.
// A wrong token gets 401 and another feature 404, as from Unleash.
type Unleash struct {
	server
	token, project, feature, env string

	smu     sync.Mutex
	enabled bool
}

// NewUnleash starts a fake holding feature in project, enabled in env.
func NewUnleash(t testing.TB, token, project, feature, env string) *Unleash {
	t.Helper()
	f := &Unleash{token: token, project: project, feature: feature, env: env, enabled: true}
	f.start(t, false, f.handle)
	return f
}

// Enabled says whether the toggle is enabled in the environment.
func (f *Unleash) Enabled() bool {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.enabled
}

// SetEnabled sets the toggle, as someone in the Unleash UI would.
func (f *Unleash) SetEnabled(on bool) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.enabled = on
}

func (f *Unleash) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("Authorization") != f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"name": "AuthenticationRequired", "message": "You must log in"})
		return
	}
	feature := "/api/admin/projects/" + f.project + "/features/" + f.feature
	switch {
	case r.URL.Path == feature && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{
			"name": f.feature, "project": f.project, "type": "kill-switch",
			"environments": []map[string]any{
				{"name": "development", "enabled": true, "type": "development"},
				{"name": f.env, "enabled": f.Enabled(), "type": "production"},
			},
		})
	case r.URL.Path == feature+"/environments/"+f.env+"/on", r.URL.Path == feature+"/environments/"+f.env+"/off":
		if r.Method != http.MethodPost {
			f.reject(w, r, "method %s, want POST", r.Method)
			return
		}
		if len(body) != 0 {
			f.reject(w, r, "unexpected body %s", body)
			return
		}
		if f.faulty() != FaultWrongState {
			f.SetEnabled(r.URL.Path == feature+"/environments/"+f.env+"/on")
		}
		w.WriteHeader(http.StatusOK)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"name": "NotFoundError", "message": "Could not find the feature"})
	}
}
