package halttest

import (
	"net/http"
	"sync"
	"testing"
)

// LaunchDarkly fakes the LaunchDarkly REST API for one flag in one
// environment: semantic-patch PATCH and GET of /api/v2/flags/{project}/{flag}.
// A wrong token gets 401 and another flag 404, as from LaunchDarkly.
type LaunchDarkly struct {
	server
	token, project, flag, env string

	smu sync.Mutex
	on  bool
}

// NewLaunchDarkly starts a fake holding flag in project, on in env.
func NewLaunchDarkly(t testing.TB, token, project, flag, env string) *LaunchDarkly {
	t.Helper()
	f := &LaunchDarkly{token: token, project: project, flag: flag, env: env, on: true}
	f.start(t, false, f.handle)
	return f
}

// On says whether the flag is on in the environment.
func (f *LaunchDarkly) On() bool {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.on
}

// SetOn sets the flag's state, as someone in the LaunchDarkly UI would.
func (f *LaunchDarkly) SetOn(on bool) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.on = on
}

type ldSemanticPatch struct {
	EnvironmentKey string `json:"environmentKey"`
	Comment        string `json:"comment"`
	Instructions   []struct {
		Kind string `json:"kind"`
	} `json:"instructions"`
}

func (f *LaunchDarkly) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("Authorization") != f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized", "message": "Invalid account ID header"})
		return
	}
	if r.URL.Path != "/api/v2/flags/"+f.project+"/"+f.flag {
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "not_found", "message": "Unknown resource"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.answer(w)
	case http.MethodPatch:
		if !f.expectHeader(w, r, "Content-Type", "application/json; domain-model=launchdarkly.semanticpatch") {
			return
		}
		var p ldSemanticPatch
		if err := decodeStrict(body, &p); err != nil {
			f.reject(w, r, "body %s: %v", body, err)
			return
		}
		if p.EnvironmentKey != f.env || p.Comment == "" || len(p.Instructions) != 1 {
			f.reject(w, r, "body %s: want environmentKey %q, a comment and one instruction", body, f.env)
			return
		}
		var on bool
		switch p.Instructions[0].Kind {
		case "turnFlagOn":
			on = true
		case "turnFlagOff":
		default:
			f.reject(w, r, "instruction kind %q", p.Instructions[0].Kind)
			return
		}
		if f.faulty() != FaultWrongState {
			f.SetOn(on)
		}
		f.answer(w)
	default:
		f.reject(w, r, "method %s, want GET or PATCH", r.Method)
	}
}

// answer writes the flag as LaunchDarkly does (trimmed).
func (f *LaunchDarkly) answer(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"key":  f.flag,
		"kind": "boolean",
		"environments": map[string]any{
			f.env: map[string]any{"on": f.On(), "archived": false, "version": 3},
		},
	})
}
