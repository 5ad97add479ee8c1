package halt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// ReplicasAnnotation on the Deployment remembers its replicas before a halt,
// so resume restores them. It lives on the Deployment, not in reins, so any
// reins replica (or a human with kubectl) can resume.
const ReplicasAnnotation = "reins.dev/replicas-before-halt"

const mergePatch = "application/merge-patch+json"

// AdapterKubernetes is the Kubernetes adapter's name in halt.adapter.
const AdapterKubernetes = "kubernetes"

// k8sName is a Kubernetes object name (RFC 1123 subdomain).
var k8sName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// kubernetesAdapter is the Kubernetes adapter's registry entry: its halt:
// settings (docs/config.md, halt) and its constructor.
var kubernetesAdapter = registration{
	spec: ownership.AdapterSpec{Name: AdapterKubernetes, Settings: []ownership.SettingSpec{
		{Key: "namespace", Required: true, Help: "the Kubernetes namespace",
			Pattern: k8sName, Describe: k8sNameText},
		{Key: "deployment", Required: true, Help: "the Deployment name",
			Pattern: k8sName, Describe: k8sNameText},
		{Key: "url", Kind: ownership.SettingURL, Required: true, Help: "the endpoint reins calls"},
		{Key: "token_env", Kind: ownership.SettingEnv, Required: true, Help: "the environment variable holding the API token"},
		{Key: "ca_file", Kind: ownership.SettingFile, Help: "the CA bundle of the API server"},
	}},
	new: func(cfg Config) Adapter { return NewKubernetes(cfg) },
}

const k8sNameText = "a Kubernetes object name (lowercase letters, digits, '-' and '.')"

// Kubernetes is the `kubernetes` adapter: it scales the agent's Deployment to
// 0 through the scale subresource. Pods are shared by sessions, so it halts
// whole agents only.
type Kubernetes struct {
	getenv func(string) string
	client *http.Client

	mu      sync.Mutex
	clients map[string]*http.Client // by CA file
}

var _ Adapter = (*Kubernetes)(nil)

// NewKubernetes returns the Kubernetes adapter.
func NewKubernetes(cfg Config) *Kubernetes {
	cfg = cfg.withDefaults()
	return &Kubernetes{getenv: cfg.Getenv, client: cfg.HTTPClient, clients: map[string]*http.Client{}}
}

// SessionScoped is false: scaling stops every session at once.
func (a *Kubernetes) SessionScoped() bool { return false }

type k8sScale struct {
	Spec struct {
		Replicas int32 `json:"replicas"` // omitted by the API server when 0
	} `json:"spec"`
	Status struct {
		Replicas int32 `json:"replicas"`
	} `json:"status"`
}

// Do scales to 0 after noting the current replicas in ReplicasAnnotation
// (halt), or back to the noted replicas, 1 if none (resume). Repeating a
// halt keeps the first note; repeating a resume leaves a running
// Deployment as it is.
func (a *Kubernetes) Do(ctx context.Context, r incidents.HaltRequest) error {
	if err := checkRequest(a, r); err != nil {
		return err
	}
	k, err := a.target(r.Agent)
	if err != nil {
		return err
	}
	scale, err := k.scale(ctx)
	if err != nil {
		return err
	}
	if r.Action == incidents.ActionHalt {
		if scale.Spec.Replicas > 0 {
			note := map[string]any{"metadata": map[string]any{"annotations": map[string]string{
				ReplicasAnnotation: strconv.Itoa(int(scale.Spec.Replicas))}}}
			if _, err := k.send(ctx, http.MethodPatch, k.deployment, "", note, "noting replicas of"); err != nil {
				return err
			}
		}
		return k.setReplicas(ctx, 0, "")
	}
	if scale.Spec.Replicas > 0 {
		return nil
	}
	want, err := k.replicasBeforeHalt(ctx)
	if err != nil {
		return err
	}
	return k.setReplicas(ctx, want, "")
}

// Verify reads the Deployment back: halted when no pod runs (status) and
// none is wanted (spec); resumed when replicas are wanted again. It reads the
// Deployment, not the scale subresource: a Scale omits spec.replicas when it
// is 0, so any 2xx reply that is not a Scale (an empty {}, a proxy's page)
// would decode as "0 replicas" and a halt that never happened would pass.
// A Deployment always carries spec.replicas; a reply without it, or naming
// another object, is not verification.
func (a *Kubernetes) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	if err := checkRequest(a, r); err != nil {
		return false, err
	}
	k, err := a.target(r.Agent)
	if err != nil {
		return false, err
	}
	dep, err := k.read(ctx)
	if err != nil {
		return false, err
	}
	if r.Action == incidents.ActionHalt {
		return *dep.Spec.Replicas == 0 && dep.Status.Replicas == 0, nil
	}
	return *dep.Spec.Replicas > 0, nil
}

// Drill reads the scale and sends the halt as a server-side dry run
// (dryRun=All): it proves the token may scale the Deployment, and the API
// server persists nothing.
func (a *Kubernetes) Drill(ctx context.Context, agent *ownership.Agent) error {
	k, err := a.target(agent)
	if err != nil {
		return err
	}
	if _, err := k.scale(ctx); err != nil {
		return err
	}
	return k.setReplicas(ctx, 0, "All")
}

// k8sTarget is one Deployment on one API server, with its credentials.
type k8sTarget struct {
	client     *http.Client
	token      string
	agent      string
	name       string // the Deployment's name
	deployment string // URL of the Deployment
}

func (a *Kubernetes) target(agent *ownership.Agent) (*k8sTarget, error) {
	spec := agent.Halt
	for _, s := range []struct{ v, name string }{{spec.Setting("url"), "url"}, {spec.Setting("namespace"), "namespace"},
		{spec.Setting("deployment"), "deployment"}} {
		if s.v == "" {
			return nil, missingSetting(AdapterKubernetes, agent.Name, s.name)
		}
	}
	token := ""
	if spec.Setting("token_env") != "" {
		token = a.getenv(spec.Setting("token_env"))
	}
	if token == "" {
		return nil, missingEnv(AdapterKubernetes, agent.Name, "token_env", spec.Setting("token_env"))
	}
	client, err := a.clientFor(spec.Setting("ca_file"))
	if err != nil {
		return nil, incidents.Errorf(incidents.EINVALID, "The halt.ca_file of %s cannot be used: %v", agent.Name, err)
	}
	dep := joinURL(spec.Setting("url"), "/apis/apps/v1/namespaces/"+url.PathEscape(spec.Setting("namespace"))+
		"/deployments/"+url.PathEscape(spec.Setting("deployment")))
	return &k8sTarget{client: client, token: token, agent: agent.Name, name: spec.Setting("deployment"), deployment: dep}, nil
}

// clientFor returns a client trusting caFile's certificates on top of the
// configured client's settings; "" is the configured client itself.
func (a *Kubernetes) clientFor(caFile string) (*http.Client, error) {
	if caFile == "" {
		return a.client, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[caFile]; ok {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", caFile)
	}
	tr, ok := a.client.Transport.(*http.Transport)
	if !ok || tr == nil {
		tr = http.DefaultTransport.(*http.Transport)
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c := &http.Client{Transport: tr, Timeout: a.client.Timeout}
	a.clients[caFile] = c
	return c, nil
}

func (k *k8sTarget) scale(ctx context.Context) (*k8sScale, error) {
	body, err := k.send(ctx, http.MethodGet, k.deployment+"/scale", "", nil, "reading scale of")
	if err != nil {
		return nil, err
	}
	var s k8sScale
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, unavailable(err, "Kubernetes answered with something other than a Scale for %s: %s", k.agent, excerpt(body))
	}
	return &s, nil
}

func (k *k8sTarget) setReplicas(ctx context.Context, n int, dryRun string) error {
	patch := map[string]any{"spec": map[string]int{"replicas": n}}
	_, err := k.send(ctx, http.MethodPatch, k.deployment+"/scale", dryRun, patch, "scaling to "+strconv.Itoa(n))
	return err
}

// k8sDeployment is the part of a Deployment Verify reads. Replicas is a
// pointer: the API server always writes spec.replicas of a Deployment, so
// its absence means the reply is not the Deployment.
type k8sDeployment struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Replicas int32 `json:"replicas"` // omitted when 0
	} `json:"status"`
}

// read GETs the Deployment and refuses a reply that is not it.
func (k *k8sTarget) read(ctx context.Context) (*k8sDeployment, error) {
	body, err := k.send(ctx, http.MethodGet, k.deployment, "", nil, "reading deployment of")
	if err != nil {
		return nil, err
	}
	var d k8sDeployment
	if err := json.Unmarshal(body, &d); err != nil || d.Kind != "Deployment" || d.Spec.Replicas == nil ||
		d.Metadata.Name != k.name {
		return nil, incidents.Errorf(incidents.EUNAVAILABLE,
			"Kubernetes did not answer with the Deployment %s of %s (want kind Deployment with spec.replicas), so the halt is not verified: %s",
			k.name, k.agent, excerpt(body))
	}
	return &d, nil
}

// replicasBeforeHalt reads ReplicasAnnotation; absent or unusable means 1.
func (k *k8sTarget) replicasBeforeHalt(ctx context.Context) (int, error) {
	body, err := k.send(ctx, http.MethodGet, k.deployment, "", nil, "reading deployment of")
	if err != nil {
		return 0, err
	}
	var dep struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &dep); err != nil {
		return 0, unavailable(err, "Kubernetes answered with something other than a Deployment for %s: %s", k.agent, excerpt(body))
	}
	n, err := strconv.Atoi(dep.Metadata.Annotations[ReplicasAnnotation])
	if err != nil || n < 1 {
		return 1, nil
	}
	return n, nil
}

// send makes one API call; a non-nil patch is sent as a JSON merge patch.
func (k *k8sTarget) send(ctx context.Context, method, u, dryRun string, patch any, what string) ([]byte, error) {
	var body []byte
	if patch != nil {
		var err error
		if body, err = json.Marshal(patch); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, incidents.Errorf(incidents.EINVALID, "The halt.url of %s is not a valid URL: %v", k.agent, err)
	}
	if dryRun != "" {
		req.URL.RawQuery = url.Values{"dryRun": {dryRun}}.Encode()
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reins")
	if patch != nil {
		req.Header.Set("Content-Type", mergePatch)
	}
	return call(ctx, k.client, req, "Kubernetes "+what+" "+k.agent)
}
