package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Operating reins from the docs alone: the README says how to get the
// binary; docs/deploy.md and the chart's values name the OTLP token and the
// web view's sign-in settings (from the Secret), the break-glass command on
// Kubernetes with the image's real binary path, and which proxy addresses
// to trust behind an ingress controller.
func TestDeployDocsCoverTokensSignInAndBreakGlass(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindStringSubmatch(read("../../go.mod"))[1]
	if readme := read("../../README.md"); !strings.Contains(readme, "go install "+module+"/cmd/reins@latest") {
		t.Errorf("README.md does not say how to get a reins binary (go install %s/cmd/reins@latest)", module)
	}
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"`).FindStringSubmatch(read("../../examples/deploy/Dockerfile"))
	if entry == nil {
		t.Fatal("the Dockerfile has no ENTRYPOINT")
	}
	deploy, values := read("../../docs/deploy.md"), read(chartDir+"/values.yaml")
	settings := []string{"REINS_OTLP_TOKEN", "REINS_SLACK_CLIENT_ID", "REINS_SLACK_CLIENT_SECRET", "REINS_WEB_AUTH",
		"REINS_WEB_USER_HEADER", "REINS_WEB_TRUSTED_PROXIES"}
	for _, s := range settings {
		if !strings.Contains(deploy, s) {
			t.Errorf("docs/deploy.md does not mention %s", s)
		}
		if !strings.Contains(values, s) {
			t.Errorf("the chart's values.yaml does not say %s comes from the Secret", s)
		}
	}
	for _, want := range []string{
		"exec deploy/reins -- " + entry[1] + " kill ", // the image has no shell
		"podCIDR",                      // what to trust behind an ingress controller
		"NetworkPolicy",                // and who else could then send the header
		"/auth/callback", "/v1/traces", // sign-in and OTLP through the Ingress
	} {
		if !strings.Contains(deploy, want) {
			t.Errorf("docs/deploy.md lacks %q", want)
		}
	}
}
