package ownership_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

func TestTelemetryCredentials(t *testing.T) {
	yaml := strings.Replace(agentYAML, "teams:\n  core: {}\n",
		"teams:\n  core:\n    telemetry: {token_env: CORE_OTLP_TOKEN}\n", 1) +
		"    telemetry:\n      token_env: [A_OTLP_TOKEN, A_OTLP_TOKEN_NEXT]\n" +
		"  b: {team: core, kill_authority: {users: [U01A]}, halt: {adapter: flag}}\n"
	reg, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	if len(probs) != 0 {
		t.Fatalf("got problems:\n%s", probs)
	}
	got := reg.TelemetryCredentials()
	want := []ownership.TelemetryCredential{
		{Env: "A_OTLP_TOKEN", Agents: []string{"a"}},
		{Env: "A_OTLP_TOKEN_NEXT", Agents: []string{"a"}},
		{Env: "CORE_OTLP_TOKEN", Agents: []string{"a", "b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("credentials = %+v, want %+v", got, want)
	}
}

func TestTelemetryTokenEnvErrors(t *testing.T) {
	tests := []struct {
		name, telemetry, want string
	}{
		{"ErrThreeVariables", "{token_env: [A, B, C]}", "13: agents.a.telemetry.token_env: list at most 2 variables"},
		{"ErrSecretPasted", "{token_env: 'otlp-s3cr3t!'}", "13: agents.a.telemetry.token_env: must name an environment variable"},
		{"ErrUnknownKey", "{token: A}", `13: agents.a.telemetry: unknown key "token"`},
		{"ErrEmptyList", "{token_env: []}", "13: agents.a.telemetry.token_env: name at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantParseErrors(t, agentYAML+"    telemetry: "+tt.telemetry+"\n", []string{tt.want})
		})
	}
}

func TestTelemetryTokenEnvUnsetWarns(t *testing.T) {
	_, probs := ownership.Parse("t.yaml", []byte(agentYAML+"    telemetry: {token_env: A_OTLP_TOKEN}\n"),
		ownership.Options{Adapters: adapters, Getenv: func(string) string { return "" }})
	if len(probs.Errors()) != 0 || len(probs.Warnings()) != 1 ||
		!strings.Contains(probs.Warnings()[0].String(), "t.yaml:13: warning: agents.a.telemetry.token_env: environment variable A_OTLP_TOKEN is not set") {
		t.Errorf("problems:\n%s\nwant one warning at line 13 naming A_OTLP_TOKEN", probs)
	}
	if strings.Contains(probs.String(), "s3cr3t") {
		t.Error("a value was echoed")
	}
}
