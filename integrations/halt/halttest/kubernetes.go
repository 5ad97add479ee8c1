package halttest

import (
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// KubernetesConfig describes the one Deployment a Kubernetes fake serves.
type KubernetesConfig struct {
	Token      string // bearer token it accepts
	Namespace  string
	Deployment string
	Replicas   int  // replicas before any halt
	TLS        bool // serve HTTPS; CAFile then names its certificate
}

// Kubernetes fakes the Kubernetes API server for one Deployment: GET and
// merge-patch PATCH of the Deployment and of its scale subresource, with
// dryRun=All honoured. Pods come and go at once (status follows spec)
// unless HoldPods is on; FaultWrongState accepts patches and ignores them.
type Kubernetes struct {
	server
	cfg KubernetesConfig

	smu         sync.Mutex
	spec        int
	status      int
	hold        bool
	annotations map[string]string
}

// NewKubernetes starts an API server fake.
func NewKubernetes(t testing.TB, cfg KubernetesConfig) *Kubernetes {
	t.Helper()
	f := &Kubernetes{cfg: cfg, spec: cfg.Replicas, status: cfg.Replicas, annotations: map[string]string{}}
	f.start(t, cfg.TLS, f.handle)
	return f
}

// CAFile writes the fake's TLS certificate to a PEM file in a temporary
// directory and returns its path, for halt.ca_file.
func (f *Kubernetes) CAFile(t testing.TB) string {
	t.Helper()
	cert := f.srv.Certificate()
	if cert == nil {
		t.Fatal("halttest: CAFile needs a fake started with TLS")
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Replicas returns the wanted (spec) and running (status) replicas.
func (f *Kubernetes) Replicas() (spec, status int) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.spec, f.status
}

// SetReplicas scales the Deployment, as kubectl would.
func (f *Kubernetes) SetReplicas(n int) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.spec = n
	if !f.hold {
		f.status = n
	}
}

// HoldPods keeps the running pods (status.replicas) where they are while on,
// like pods slow to terminate; turning it off lets them catch up.
func (f *Kubernetes) HoldPods(on bool) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.hold = on
	if !on {
		f.status = f.spec
	}
}

// Annotation returns one annotation of the Deployment.
func (f *Kubernetes) Annotation(key string) string {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.annotations[key]
}

func (f *Kubernetes) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("Authorization") != "Bearer "+f.cfg.Token {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
		return
	}
	dep := "/apis/apps/v1/namespaces/" + f.cfg.Namespace + "/deployments/" + f.cfg.Deployment
	if r.URL.Path != dep && r.URL.Path != dep+"/scale" {
		writeJSON(w, http.StatusNotFound, map[string]any{"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
		return
	}
	scale := r.URL.Path == dep+"/scale"
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		if !f.expectHeader(w, r, "Content-Type", "application/merge-patch+json") {
			return
		}
		dry := r.URL.Query().Get("dryRun")
		if dry != "" && dry != "All" {
			f.reject(w, r, "dryRun=%q, want All", dry)
			return
		}
		if !f.patch(w, r, body, scale, dry == "" && f.faulty() != FaultWrongState) {
			return
		}
	default:
		f.reject(w, r, "method %s, want GET or PATCH", r.Method)
		return
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	if scale {
		spec := map[string]any{}
		if f.spec != 0 {
			spec["replicas"] = f.spec // the API server omits a zero
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "Scale", "apiVersion": "autoscaling/v1",
			"metadata": map[string]any{"name": f.cfg.Deployment, "namespace": f.cfg.Namespace},
			"spec":     spec, "status": map[string]any{"replicas": f.status, "selector": "app=" + f.cfg.Deployment}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "Deployment", "apiVersion": "apps/v1",
		"metadata": map[string]any{"name": f.cfg.Deployment, "namespace": f.cfg.Namespace, "annotations": f.annotations},
		"spec":     map[string]any{"replicas": f.spec}, "status": map[string]any{"replicas": f.status}})
}

// patch checks a merge patch (scale: only spec.replicas; deployment: only
// metadata.annotations) and applies it when apply is set.
func (f *Kubernetes) patch(w http.ResponseWriter, r *http.Request, body []byte, scale, apply bool) bool {
	f.t.Helper()
	if scale {
		var p struct {
			Spec struct {
				Replicas *int `json:"replicas"`
			} `json:"spec"`
		}
		if err := decodeStrict(body, &p); err != nil || p.Spec.Replicas == nil || *p.Spec.Replicas < 0 {
			f.reject(w, r, "scale patch %s: want {\"spec\":{\"replicas\":N}} (%v)", body, err)
			return false
		}
		if apply {
			f.SetReplicas(*p.Spec.Replicas)
		}
		return true
	}
	var p struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := decodeStrict(body, &p); err != nil || len(p.Metadata.Annotations) == 0 {
		f.reject(w, r, "deployment patch %s: want only metadata.annotations (%v)", body, err)
		return false
	}
	if apply {
		f.smu.Lock()
		for k, v := range p.Metadata.Annotations {
			f.annotations[k] = v
		}
		f.smu.Unlock()
	}
	return true
}
