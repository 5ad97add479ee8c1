package ownership_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

func TestAgentPublicHasNoSecrets(t *testing.T) {
	reg := loadExample(t)
	data, err := json.Marshal(reg.Docs())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"SUPPORT_BOT_HALT_SECRET", "CODE_AGENT_K8S_TOKEN", "LD_API_TOKEN", "PD_SUPPORT_BOT_KILL_KEY", "_env", "ca_file"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("agent docs mention %s:\n%s", secret, data)
		}
	}
}

func TestAgentPublicOK(t *testing.T) {
	reg := loadExample(t)
	data, err := json.Marshal(reg.Agent("support-bot").Public())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	halt := got["halt"].(map[string]any)
	if halt["adapter"] != "webhook" || halt["url"] != "https://support-bot.internal.example.com/reins/halt" || halt["confirm"] != true {
		t.Errorf("halt: got %v", halt)
	}
	for key, want := range map[string]any{
		"name":         "support-bot",
		"team":         "support-ai",
		"drill":        "0 3 * * 1",
		"session_link": "https://langfuse.example.com/project/support-prod/sessions/{session}",
	} {
		if got[key] != want {
			t.Errorf("%s: got %v, want %v", key, got[key], want)
		}
	}
	if n := len(got["blast_radius"].([]any)); n != 2 {
		t.Errorf("blast_radius: got %d items, want 2", n)
	}
	if ka := got["kill_authority"].(map[string]any); ka["on_call"] != "PABC123" || len(ka["users"].([]any)) != 2 {
		t.Errorf("kill_authority: got %v", ka)
	}
}

func TestAgentPublicURLWithoutCredentials(t *testing.T) {
	a := &ownership.Agent{Name: "x", Halt: ownership.HaltSpec{Adapter: "webhook",
		Settings: map[string]string{"url": "https://user:pw@agent.example.com/halt?token=abc#frag"}}}
	if got, want := a.Public().Halt.Settings["url"], "https://agent.example.com/halt"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if d := a.Public(); d.Aliases == nil || d.BlastRadius == nil || d.RACI.Informed == nil {
		t.Errorf("empty lists must be [] not null: got %+v", d)
	}
}
