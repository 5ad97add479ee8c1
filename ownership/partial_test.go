package ownership_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

const partialConfig = `slack:
  channel_prefix: inc
alerts:
  group_windw: 4h
teams:
  support-ai:
    slack_channel: support-ai
  billing:
    slack_chanel: billing
agents:
  support-bot:
    team: support-ai
    aliases: [sb]
    kill_authority:
      users: [U01ALICE]
    halt:
      adapter: webhook
      url: https://support-bot.example.com/halt
      secret_env: HALT_SECRET
  billing-bot:
    team: billing
    kill_authority:
      users: [U01ALICE]
    halt:
      adapter: nope
  triage-bot:
    team: nowhere
      bad_indent: [
`

// A break-glass command for support-bot gets support-bot alone although the
// file has errors elsewhere (alerts, another team, other agents), and is
// told where they are; billing-bot, whose own entry is broken, gets nothing.
func TestLoadForKeepsTheNamedAgent(t *testing.T) {
	opts := ownership.Options{Adapters: adapters, Getenv: allSet}
	for name, cfg := range map[string]struct {
		text, elsewhere string
	}{
		"typos": {strings.ReplaceAll(partialConfig, "      bad_indent: [\n", ""),
			"alerts, team billing, agent billing-bot, agent triage-bot"},
		// yaml.v3 stops at a syntax error: only it is known.
		"syntax error": {partialConfig, "agent triage-bot"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reins.yaml")
			if err := os.WriteFile(path, []byte(cfg.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if reg, _ := ownership.Load(path, opts); reg != nil {
				t.Fatal("the whole file loads: the test needs it invalid")
			}
			for _, name := range []string{"support-bot", "SB"} {
				reg, problems, elsewhere := ownership.LoadFor(path, name, opts)
				if reg == nil {
					t.Fatalf("LoadFor(%s): no registry; problems %v", name, problems)
				}
				if a := reg.Agent(name); a == nil || a.Name != "support-bot" || len(reg.Agents) != 1 || reg.Teams["support-ai"] == nil {
					t.Errorf("LoadFor(%s): agents %v", name, reg.Names())
				}
				if len(problems.Errors()) == 0 {
					t.Error("the file's problems are not returned")
				}
				if got := strings.Join(elsewhere, ", "); got != cfg.elsewhere {
					t.Errorf("elsewhere = %q, want %q", got, cfg.elsewhere)
				}
			}
			if reg, _, _ := ownership.LoadFor(path, "nobody", opts); reg != nil {
				t.Error("an agent the file does not name got a registry")
			}
		})
	}
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(partialConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, problems, _ := ownership.LoadFor(path, "billing-bot", opts)
	if reg != nil || len(problems) == 0 {
		t.Fatalf("billing-bot's broken entry gave a registry (%v) or no problems (%v)", reg, problems)
	}
	for _, p := range problems {
		if !strings.Contains(p.Message, "billing") {
			t.Errorf("billing-bot's problem is not in its entry or team: %s", p)
		}
	}
}
