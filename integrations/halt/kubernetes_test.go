package halt_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func k8sAgent(url string) *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterKubernetes,
		Settings: map[string]string{"url": url, "token_env": "K8S_TOKEN", "namespace": "agents", "deployment": "support-bot"}}}
}

func newK8s(t *testing.T, replicas int, tls bool) *halttest.Kubernetes {
	return halttest.NewKubernetes(t, halttest.KubernetesConfig{Token: "sa-token", Namespace: "agents",
		Deployment: "support-bot", Replicas: replicas, TLS: tls})
}

func TestKubernetesConformance(t *testing.T) {
	f := newK8s(t, 3, false)
	runConformance(t, conformance{
		agent:   k8sAgent(f.URL()),
		fake:    f,
		halted:  func() bool { spec, status := f.Replicas(); return spec == 0 && status == 0 },
		secret:  "K8S_TOKEN",
		adapter: func(cfg halt.Config) halt.Adapter { return halt.NewKubernetes(cfg) },
	}, "sa-token")
}

func TestKubernetesRestoresReplicas(t *testing.T) {
	const dep = "/apis/apps/v1/namespaces/agents/deployments/support-bot"
	tests := []struct {
		name     string
		replicas int
		want     []string
		restored int
	}{
		{"OK", 3, []string{
			"GET " + dep + "/scale", "PATCH " + dep, "PATCH " + dep + "/scale", // halt
			"GET " + dep + "/scale", "PATCH " + dep + "/scale", // repeat: the note is kept
			"GET " + dep + "/scale", "GET " + dep, "PATCH " + dep + "/scale", // resume
			"GET " + dep + "/scale", // repeat: running, left alone
		}, 3},
		{"DefaultOneWithoutNote", 0, []string{
			"GET " + dep + "/scale", "PATCH " + dep + "/scale",
			"GET " + dep + "/scale", "PATCH " + dep + "/scale",
			"GET " + dep + "/scale", "GET " + dep, "PATCH " + dep + "/scale",
			"GET " + dep + "/scale",
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newK8s(t, tt.replicas, false)
			a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get})
			agent := k8sAgent(f.URL())
			ctx := context.Background()
			for _, action := range []string{incidents.ActionHalt, incidents.ActionHalt, incidents.ActionResume, incidents.ActionResume} {
				if err := a.Do(ctx, request(agent, action)); err != nil {
					t.Fatalf("%s: %v", action, err)
				}
			}
			if spec, _ := f.Replicas(); spec != tt.restored {
				t.Errorf("replicas after resume = %d, want %d", spec, tt.restored)
			}
			assertCalls(t, f.Calls(), tt.want...)
			for _, c := range f.Calls() {
				if c.Header.Get("Authorization") != "Bearer sa-token" {
					t.Errorf("%s %s: Authorization %q", c.Method, c.Path, c.Header.Get("Authorization"))
				}
			}
		})
	}
}

func TestKubernetesDrillIsDryRun(t *testing.T) {
	f := newK8s(t, 2, false)
	a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get})
	if err := a.Drill(context.Background(), k8sAgent(f.URL())); err != nil {
		t.Fatal(err)
	}
	if spec, status := f.Replicas(); spec != 2 || status != 2 {
		t.Errorf("replicas after drill = %d/%d, want 2/2", spec, status)
	}
	const scale = "/apis/apps/v1/namespaces/agents/deployments/support-bot/scale"
	assertCalls(t, f.Calls(), "GET "+scale, "PATCH "+scale+"?dryRun=All")
}

func TestKubernetesCAFile(t *testing.T) {
	f := newK8s(t, 1, true)
	agent := k8sAgent(f.URL())
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		agent := *agent
		agent.Halt = agent.Halt.With("ca_file", f.CAFile(t))
		a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get, HTTPClient: &http.Client{}})
		if err := a.Drill(ctx, &agent); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnknownCA", func(t *testing.T) {
		a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get, HTTPClient: &http.Client{}})
		assertErr(t, a.Drill(ctx, agent), incidents.EUNAVAILABLE, "certificate")
	})
	t.Run("ErrMissingCAFile", func(t *testing.T) {
		agent := *agent
		agent.Halt = agent.Halt.With("ca_file", t.TempDir()+"/absent.pem")
		a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get})
		assertErr(t, a.Drill(ctx, &agent), incidents.EINVALID, "halt.ca_file")
	})
}

func TestKubernetesVerifyWaitsForPods(t *testing.T) {
	f := newK8s(t, 2, false)
	a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get})
	agent := k8sAgent(f.URL())
	f.HoldPods(true)
	if err := a.Do(context.Background(), request(agent, incidents.ActionHalt)); err != nil {
		t.Fatal(err)
	}
	// Scaled to 0, but the pods are still terminating: not halted yet.
	assertVerify(t, a, request(agent, incidents.ActionHalt), false)
	f.HoldPods(false)
	assertVerify(t, a, request(agent, incidents.ActionHalt), true)
	// Someone (an HPA, a deploy) scales it back up behind reins' back.
	f.SetReplicas(1)
	assertVerify(t, a, request(agent, incidents.ActionHalt), false)
}

// A 2xx scale reply is the API server's word, not the Deployment's state:
// an answer that is not a Scale (an empty {} from a proxy, a Status) decodes
// as "0 replicas" when read through the scale subresource. Verify reads the
// Deployment back and passes only when its spec.replicas is 0.
func TestKubernetesVerifyReadsDeploymentBack(t *testing.T) {
	const dep = "/apis/apps/v1/namespaces/agents/deployments/support-bot"
	tests := []struct {
		name       string
		deployment string // what GET of the Deployment answers
		wantErr    bool
		want       bool
	}{
		{"StillRunning", `{"kind":"Deployment","metadata":{"name":"support-bot"},"spec":{"replicas":3},"status":{"replicas":3}}`, false, false},
		{"EmptyReply", `{}`, true, false},
		{"NoReplicas", `{"kind":"Deployment","metadata":{"name":"support-bot"},"spec":{},"status":{}}`, true, false},
		{"OtherObject", `{"kind":"Deployment","metadata":{"name":"other"},"spec":{"replicas":0},"status":{}}`, true, false},
		{"ScaledToZero", `{"kind":"Deployment","metadata":{"name":"support-bot"},"spec":{"replicas":0},"status":{}}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case dep + "/scale":
					io.WriteString(w, `{}`) // accepted, says nothing
				case dep:
					io.WriteString(w, tt.deployment)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			a := halt.NewKubernetes(halt.Config{Getenv: env{"K8S_TOKEN": "sa-token"}.get})
			agent := k8sAgent(srv.URL)
			if err := a.Do(context.Background(), request(agent, incidents.ActionHalt)); err != nil {
				t.Fatal(err)
			}
			got, err := a.Verify(context.Background(), request(agent, incidents.ActionHalt))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Verify = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil {
				assertErr(t, err, incidents.EUNAVAILABLE, "not verified")
			}
		})
	}
}
