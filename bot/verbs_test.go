package bot

import "testing"

// Every verb is typed by its own name, has a usage line, and no word names
// two verbs.
func TestVerbsRegistry(t *testing.T) {
	seen := map[string]string{}
	for _, v := range verbs {
		if got, ok := verbNamed(v.name); !ok || got.name != v.name {
			t.Errorf("%s: its own name does not find it", v.name)
		}
		if v.usage == "" {
			t.Errorf("%s: no usage line", v.name)
		}
		for _, w := range v.words {
			if other, dup := seen[w]; dup {
				t.Errorf("%q names both %s and %s", w, other, v.name)
			}
			seen[w] = v.name
		}
	}
	for _, name := range []string{VerbKill, VerbResume, VerbLeave, VerbStatus, VerbWho, VerbDeclare, VerbChecklist, VerbResolve, VerbPostmortem, VerbSession, VerbHelp} {
		if usage(name) == "" {
			t.Errorf("verb %s is not in verbs", name)
		}
	}
}
