package ownership_test

import (
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

func loadExample(t *testing.T) *ownership.Registry {
	t.Helper()
	reg, probs := ownership.Load(example, ownership.Options{Adapters: adapters, Getenv: allSet})
	if err := probs.Err(); err != nil {
		t.Fatalf("load example: %v", err)
	}
	return reg
}

func TestRegistryAgent(t *testing.T) {
	reg := loadExample(t)
	tests := []struct {
		name string
		want string // canonical name, "" for none
	}{
		{"support-bot", "support-bot"},
		{"Support-Bot", "support-bot"},
		{"support-bot-v2", "support-bot"},
		{"SUPPORT-BOT-V2", "support-bot"},
		{"billing-bot", "billing-agent"},
		{"code-agent", "code-agent"},
		{"support", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if a := reg.Agent(tt.name); a != nil {
				got = a.Name
			}
			if got != tt.want {
				t.Errorf("Agent(%q): got %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	var none *ownership.Registry
	if none.Agent("support-bot") != nil || ownership.Empty().Agent("support-bot") != nil {
		t.Error("nil or empty registry: got an agent, want nil")
	}
}

func TestRegistrySuggest(t *testing.T) {
	reg := loadExample(t)
	tests := []struct {
		name  string
		query string
		n     int
		want  string // comma-joined
	}{
		{"Typo", "suport-bot", 3, "support-bot"},
		{"SwappedLetters", "supprot-bot", 3, "support-bot"},
		{"Case", "CODE-AGNET", 3, "code-agent"},
		{"AliasTypo", "billing-bto", 3, "billing-agent"},
		{"Prefix", "billing", 3, "billing-agent"},
		{"Substring", "agent", 3, "billing-agent,code-agent"},
		{"Limit", "agent", 1, "billing-agent"},
		{"PrefixBeforeSubstring", "support", 3, "support-bot"},
		{"FarOffNothing", "payroll", 3, ""},
		{"ShortNothing", "zz", 3, ""},
		{"Empty", "  ", 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(reg.Suggest(tt.query, tt.n), ",")
			if got != tt.want {
				t.Errorf("Suggest(%q, %d): got %q, want %q", tt.query, tt.n, got, tt.want)
			}
		})
	}
}

func TestRegistryPageRoute(t *testing.T) {
	reg := loadExample(t)
	tests := []struct {
		agent      string
		wantKeyEnv string
		wantEscPol string
	}{
		{"support-bot", "PD_SUPPORT_BOT_KILL_KEY", "PABC123"},
		{"code-agent", "PD_PLATFORM_AI_KEY", "PDEF456"},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			a := reg.Agent(tt.agent)
			key, pol := reg.PageRoute(a)
			if key != tt.wantKeyEnv || pol != tt.wantEscPol {
				t.Errorf("got %q %q, want %q %q", key, pol, tt.wantKeyEnv, tt.wantEscPol)
			}
			if got := reg.TeamOf(a); got == nil || got.Name != a.Team {
				t.Errorf("TeamOf: got %+v, want team %q", got, a.Team)
			}
		})
	}
	if key, pol := reg.PageRoute(nil); key != "" || pol != "" {
		t.Errorf("nil agent: got %q %q, want empty", key, pol)
	}
}
