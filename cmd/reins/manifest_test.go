package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// manifest is the part of app-manifest.yaml the route check reads.
type manifest struct {
	Features struct {
		SlashCommands []struct {
			Command string `yaml:"command"`
			URL     string `yaml:"url"`
		} `yaml:"slash_commands"`
	} `yaml:"features"`
	Settings struct {
		EventSubscriptions struct {
			RequestURL string `yaml:"request_url"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
	} `yaml:"settings"`
}

func readManifest(t *testing.T) (manifest, any) {
	t.Helper()
	raw, err := os.ReadFile("../../app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("app-manifest.yaml: %v", err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON so the validator sees JSON types.
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return m, inst
}

func TestManifestValidatesAgainstSlackSchema(t *testing.T) {
	_, inst := readManifest(t)
	f, err := os.Open("../../testdata/slack-app-manifest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(re2OrLookahead)
	if err := c.AddResource("slack-manifest.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("slack-manifest.json")
	if err != nil {
		t.Fatalf("compile Slack's schema: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("app-manifest.yaml does not validate against Slack's manifest schema:\n%v", err)
	}
}

// Every URL the manifest declares is a route reins serves: an unsigned request
// to it is refused as unsigned (401), not unknown (404).
func TestManifestURLsHaveRoutes(t *testing.T) {
	m, _ := readManifest(t)
	urls := []string{m.Settings.EventSubscriptions.RequestURL, m.Settings.Interactivity.RequestURL}
	for _, c := range m.Features.SlashCommands {
		if c.Command != "/agent" {
			t.Errorf("manifest declares %s; reins only answers /agent", c.Command)
		}
		urls = append(urls, c.URL)
	}
	h := startTestMain(t, testOptions{}).Main.routes()
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || p.Path == "" {
			t.Fatalf("manifest URL %q: %v", u, err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p.Path, bytes.NewReader([]byte("x=1"))))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("POST %s (from the manifest): got %d %s, want 401 for an unsigned request", p.Path, rec.Code, rec.Body)
		}
	}
}

// re2OrLookahead compiles patterns with Go's RE2. Slack's schema uses a
// negative lookahead, which RE2 lacks, only for unfurl and outgoing domains;
// reins' manifest declares neither, so those patterns match everything.
func re2OrLookahead(pattern string) (jsonschema.Regexp, error) {
	if strings.Contains(pattern, "(?!") {
		return matchAll(pattern), nil
	}
	return regexp.Compile(pattern)
}

type matchAll string

func (m matchAll) MatchString(string) bool { return true }
func (m matchAll) String() string          { return string(m) }
