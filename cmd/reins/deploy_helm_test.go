package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const chartDir = "../../examples/deploy/helm/reins"

// helmBinary finds helm: $REINS_HELM (set by .ci/run, which builds it), else
// PATH. Without either the chart tests skip; with REINS_HELM set they never do.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("REINS_HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Skip("helm not found: bash .ci/run builds it, or set REINS_HELM")
	}
	return h
}

// k8sObject is the part of a rendered manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		MinAvailable     *int `yaml:"minAvailable"`
		MaxUnavailable   *int `yaml:"maxUnavailable"`
		JobLabel         string
		IngressClassName string `yaml:"ingressClassName"`
		Rules            []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    int   `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		EnvFrom []struct {
			SecretRef struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name                  string `yaml:"name"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

// rendered is one `helm template` output, by kind.
type rendered map[string][]k8sObject

func (r rendered) one(t *testing.T, kind string) k8sObject {
	t.Helper()
	if len(r[kind]) != 1 {
		t.Fatalf("rendered %d %s objects, want 1", len(r[kind]), kind)
	}
	return r[kind][0]
}

func helmTemplate(t *testing.T, helm string, args ...string) (rendered, error) {
	t.Helper()
	cmd := exec.Command(helm, append([]string{"template", "reins", chartDir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	r := rendered{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm template output is not YAML: %v", err)
		}
		if o.Kind != "" {
			r[o.Kind] = append(r[o.Kind], o)
		}
	}
	return r, nil
}

// The chart passes `helm lint --strict` and renders what the issue asks for
// with the default values, PostgreSQL with three replicas, and an Ingress.
func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	cases := map[string][]string{
		"default":  nil,
		"postgres": {"-f", "../../examples/deploy/helm/values-postgres.yaml"},
		"ingress":  {"-f", "../../examples/deploy/helm/values-ingress.yaml"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			lint := exec.Command(helm, append([]string{"lint", "--strict", chartDir}, args...)...)
			if out, err := lint.CombinedOutput(); err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
			r, err := helmTemplate(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			checkDeploymentBasics(t, r)
			if r.one(t, "Service").Metadata.Name == "" {
				t.Error("the Service has no name")
			}
			r.one(t, "PodDisruptionBudget")
		})
	}

	t.Run("default is one replica on SQLite with a PVC", func(t *testing.T) {
		r, _ := helmTemplate(t, helm)
		d := r.one(t, "Deployment")
		if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
			t.Errorf("replicas %d, strategy %q; want 1, Recreate (one writer on the volume)", *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		pvc := r.one(t, "PersistentVolumeClaim")
		if env := containerEnv(d); env["REINS_DATABASE_URL"] != "sqlite:/var/lib/reins/reins.db" {
			t.Errorf("REINS_DATABASE_URL = %q, want the SQLite file on the volume", env["REINS_DATABASE_URL"])
		}
		c := d.Spec.Template.Spec.Containers[0]
		if !hasVolumeMount(c.VolumeMounts, "data", "/var/lib/reins") || !mountsClaim(d.Spec.Template.Spec, pvc.Metadata.Name) {
			t.Errorf("the data volume is not the PVC %s at /var/lib/reins", pvc.Metadata.Name)
		}
		if n := len(r["Ingress"]) + len(r["ServiceMonitor"]); n != 0 {
			t.Errorf("Ingress and ServiceMonitor are optional, off by default; got %d", n)
		}
		if p := r.one(t, "PodDisruptionBudget"); p.Spec.MinAvailable != nil {
			t.Error("a PDB with minAvailable on one replica would block every node drain")
		}
	})

	t.Run("postgres runs three replicas without a volume", func(t *testing.T) {
		r, _ := helmTemplate(t, helm, cases["postgres"]...)
		d := r.one(t, "Deployment")
		env := containerEnv(d)
		if *d.Spec.Replicas != 3 || !strings.HasPrefix(env["REINS_DATABASE_URL"], "postgres://") {
			t.Errorf("replicas %d, database %q; want 3 on PostgreSQL", *d.Spec.Replicas, env["REINS_DATABASE_URL"])
		}
		if env["PGPASSWORD"] != "secretKeyRef:reins-postgres" {
			t.Errorf("PGPASSWORD = %q, want it from the Secret reins-postgres", env["PGPASSWORD"])
		}
		if len(r["PersistentVolumeClaim"]) != 0 || d.Spec.Strategy.Type == "Recreate" {
			t.Error("PostgreSQL replicas need no PVC and roll one by one")
		}
		if p := r.one(t, "PodDisruptionBudget"); p.Spec.MinAvailable == nil || *p.Spec.MinAvailable != 1 {
			t.Error("the PDB does not keep a replica during drains")
		}
		r.one(t, "ServiceMonitor")
	})

	t.Run("a changed reins.yaml changes the pod template", func(t *testing.T) {
		a, _ := helmTemplate(t, helm)
		b, _ := helmTemplate(t, helm, "--set", "config=agents: {}")
		ca := a.one(t, "Deployment").Spec.Template.Metadata.Annotations["checksum/config"]
		cb := b.one(t, "Deployment").Spec.Template.Metadata.Annotations["checksum/config"]
		if ca == "" || ca == cb {
			t.Errorf("checksum/config %q then %q: a config change would not roll the pods", ca, cb)
		}
	})

	t.Run("several replicas without PostgreSQL are refused", func(t *testing.T) {
		_, err := helmTemplate(t, helm, "--set", "replicaCount=3")
		if err == nil || !strings.Contains(err.Error(), "replicaCount=3 needs PostgreSQL") {
			t.Errorf("got %v, want a refusal that says replicaCount=3 needs PostgreSQL", err)
		}
		_, err = helmTemplate(t, helm, "--set", "replicaCount=2", "--set", "postgres.url=postgres://reins:hunter2@db/reins")
		if err == nil || !strings.Contains(err.Error(), "contains a password") {
			t.Errorf("got %v, want a refusal of a password in postgres.url", err)
		}
	})
}

// checkDeploymentBasics: probes, resources, non-root read-only containers,
// the config checksum, and secrets only by reference.
func checkDeploymentBasics(t *testing.T, r rendered) {
	t.Helper()
	d := r.one(t, "Deployment")
	pod := d.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Error("the pod may run as root")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container's root file system is writable or it may escalate privileges")
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %q and %q, want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if !hasVolumeMount(c.VolumeMounts, "config", "/etc/reins") || containerEnv(d)["REINS_CONFIG"] != "/etc/reins/reins.yaml" {
		t.Error("reins.yaml is not mounted from the ConfigMap at /etc/reins")
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d.Spec.Template.Metadata.Annotations["checksum/config"]) {
		t.Error("no checksum/config annotation on the pod template")
	}
	if _, ok := r["ConfigMap"]; !ok {
		t.Error("no ConfigMap")
	}
	secretish := regexp.MustCompile(`TOKEN|SECRET|PASSWORD|_KEY$`)
	for name, v := range containerEnv(d) {
		if secretish.MatchString(name) && !strings.HasPrefix(v, "secretKeyRef:") {
			t.Errorf("%s is a literal value; secrets must come from a Secret", name)
		}
	}
	if len(r["Secret"]) != 0 {
		t.Error("the chart renders a Secret; it must only reference existing ones")
	}
}

// containerEnv returns the container's environment, secretKeyRef values as
// "secretKeyRef:<secret name>".
func containerEnv(d k8sObject) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if s := e.ValueFrom.SecretKeyRef.Name; s != "" {
			env[e.Name] = "secretKeyRef:" + s
		} else {
			env[e.Name] = e.Value
		}
	}
	return env
}

func hasVolumeMount(mounts []struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}, name, path string) bool {
	for _, m := range mounts {
		if m.Name == name && m.MountPath == path {
			return true
		}
	}
	return false
}

func mountsClaim(pod podSpec, claim string) bool {
	for _, v := range pod.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return true
		}
	}
	return false
}
