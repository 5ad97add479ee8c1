package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ingressRule is one path of a rendered Ingress, with its host and Ingress.
type ingressRule struct {
	ingress, host, path, pathType string
}

// matches follows the Ingress API's path matching: Exact is the whole path;
// Prefix matches whole path elements, so /agents serves /agents and
// /agents/x but not /agentsx, and / serves everything.
func (r ingressRule) matches(path string) bool {
	switch r.pathType {
	case "Exact":
		return path == r.path
	case "Prefix":
		p := strings.TrimSuffix(r.path, "/")
		return p == "" || path == p || strings.HasPrefix(path, p+"/")
	}
	return false // ImplementationSpecific: a controller's own rules; the chart must not use it
}

func ingressRules(r rendered) []ingressRule {
	var out []ingressRule
	for _, ing := range r["Ingress"] {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				out = append(out, ingressRule{ing.Metadata.Name, rule.Host, p.Path, p.PathType})
			}
		}
	}
	return out
}

var patternSegment = regexp.MustCompile(`\{[^}]*\}`)

// samplePath is a request path the pattern serves: wildcards filled in, and
// a subtree pattern (trailing /) given one element more.
func samplePath(pattern string) string {
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = patternSegment.ReplaceAllStringFunc(path, func(w string) string {
		if strings.HasSuffix(w, "...}") {
			return "x/y"
		}
		return "x"
	})
	if strings.HasSuffix(path, "/") && !strings.HasSuffix(pattern, "{$}") {
		path += "x"
	}
	return path
}

// Every route the real server registers (its mux, not a list kept here) that
// is meant for outside is reachable through the chart's Ingress, on the
// default ingress settings and values-ingress.yaml, with OTLP on the main
// host, on a host of its own, or on an Ingress of its own; /metrics, /healthz
// and /readyz (whose ?verbose=1 lists every dependency) are not; and the
// Ingress routes nothing the server does not serve.
func TestHelmChartRoutes(t *testing.T) {
	helm := helmBinary(t)
	patterns := startTestMain(t, testOptions{}).Main.routePatterns
	if len(patterns) < 30 {
		t.Fatalf("the server registered %d routes: %v", len(patterns), patterns)
	}
	cases := []struct {
		name     string
		args     []string
		otlpHost string
		ingress  int
	}{
		{"default values, ingress enabled", []string{"--set", "ingress.enabled=true"}, "reins.example.com", 1},
		{"values-ingress.yaml", []string{"-f", "../../examples/deploy/helm/values-ingress.yaml"}, "reins.example.com", 1},
		{"OTLP on its own host", []string{"--set", "ingress.enabled=true", "--set", "ingress.otlp.host=otlp.example.com"}, "otlp.example.com", 1},
		{"OTLP on its own Ingress", []string{"--set", "ingress.enabled=true", "--set", "ingress.otlp.separate=true",
			"--set", "ingress.otlp.host=otlp.internal", "--set", "ingress.otlp.className=internal"}, "otlp.internal", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := helmTemplate(t, helm, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(r["Ingress"]); n != c.ingress {
				t.Fatalf("%d Ingress objects, want %d", n, c.ingress)
			}
			rules := ingressRules(r)
			for _, pattern := range patterns {
				if pattern == "/" {
					continue // the 404 for everything else
				}
				path := samplePath(pattern)
				var via []ingressRule
				for _, rule := range rules {
					if rule.matches(path) {
						via = append(via, rule)
					}
				}
				if slices.Contains(privateRoutes, pattern) {
					if len(via) > 0 {
						t.Errorf("%s (private) is reachable through the Ingress: %+v", pattern, via)
					}
					continue
				}
				if len(via) == 0 {
					t.Errorf("%s (%s) is not reachable through the Ingress", pattern, path)
					continue
				}
				if path == "/v1/traces" && !slices.ContainsFunc(via, func(r ingressRule) bool { return r.host == c.otlpHost }) {
					t.Errorf("/v1/traces is routed on %+v, want host %s", via, c.otlpHost)
				}
			}
			for _, rule := range rules {
				if rule.pathType != "Exact" && rule.pathType != "Prefix" {
					t.Errorf("path %s has pathType %q: controllers read ImplementationSpecific their own way", rule.path, rule.pathType)
				}
				serves := slices.ContainsFunc(patterns, func(p string) bool {
					return p != "/" && !slices.Contains(privateRoutes, p) && rule.matches(samplePath(p))
				})
				if !serves {
					t.Errorf("the Ingress routes %s (%s), which the server does not serve", rule.path, rule.pathType)
				}
			}
			if c.ingress == 2 {
				otlp := r["Ingress"][1]
				if otlp.Spec.IngressClassName != "internal" || len(otlp.Spec.Rules) != 1 || len(otlp.Spec.Rules[0].HTTP.Paths) != 1 {
					t.Errorf("the OTLP Ingress %+v: want class internal and one path", otlp.Spec)
				}
				for _, rule := range rules {
					if rule.path == "/v1/traces" && rule.ingress != otlp.Metadata.Name {
						t.Errorf("/v1/traces is also on %s", rule.ingress)
					}
				}
			}
		})
	}
	t.Run("the default values expose nothing", func(t *testing.T) {
		r, err := helmTemplate(t, helm)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r["Ingress"]); n != 0 {
			t.Errorf("%d Ingress objects with the default values, want none (ingress.enabled is false)", n)
		}
	})
}

// samplePath fills wildcards the way the route check relies on.
func TestSamplePath(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /{$}":                      "/",
		"GET /incidents/{id}":           "/incidents/x",
		"/api/v1/":                      "/api/v1/x",
		"POST /v1/traces":               "/v1/traces",
		"GET /agents":                   "/agents",
		"GET /static/{file...}":         "/static/x/y",
		"GET /incidents/{id}/slack":     "/incidents/x/slack",
		"POST /ofrep/v1/evaluate/flags": "/ofrep/v1/evaluate/flags",
	} {
		if got := samplePath(pattern); got != want {
			t.Errorf("samplePath(%q) = %q, want %q", pattern, got, want)
		}
	}
	r := ingressRule{path: "/agents", pathType: "Prefix"}
	if !r.matches("/agents") || !r.matches("/agents/x") || r.matches("/agentsx") {
		t.Error("Prefix matching is not by path element")
	}
}
