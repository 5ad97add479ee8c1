package ownership

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config file, at the line it was found.
type Problem struct {
	File    string
	Line    int // 1-based; 0 when the problem concerns the whole file
	Message string
	Warning bool // true: reported, but the config is still usable
}

// String renders the problem the way compilers do, so editors can jump to it:
// "reins.yaml:12: message", or "reins.yaml:12: warning: message".
func (p Problem) String() string {
	msg := p.Message
	if p.Warning {
		msg = "warning: " + msg
	}
	if p.Line <= 0 {
		return fmt.Sprintf("%s: %s", p.File, msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, msg)
}

// Problems is every problem found in one pass, errors and warnings mixed, in
// file order.
type Problems []Problem

// Errors returns the problems that make the config unusable.
func (ps Problems) Errors() Problems { return ps.filter(false) }

// Warnings returns the problems that are only reported.
func (ps Problems) Warnings() Problems { return ps.filter(true) }

func (ps Problems) filter(warning bool) Problems {
	var out Problems
	for _, p := range ps {
		if p.Warning == warning {
			out = append(out, p)
		}
	}
	return out
}

// Err returns nil when there are no errors (warnings alone are fine), else an
// error listing every error, one per line.
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	return errors.New(errs.String())
}

// String renders one problem per line.
func (ps Problems) String() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortByLine orders problems by line, keeping the discovery order of problems
// on the same line; problems about the whole file come first.
func (ps Problems) sortByLine() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

// Options tune loading.
type Options struct {
	// Getenv reads the variables a config names (secret_env, token_env,
	// routing_key_env). nil means os.Getenv.
	Getenv func(string) string
	// StrictEnv makes a named but unset variable an error rather than a
	// warning: `reins serve` cannot halt or page without it, `reins validate`
	// may run on a machine that does not hold the secrets.
	StrictEnv bool
	// Adapters are the halt adapters a config may name, with their settings
	// (cmd/reins passes integrations/halt's table). An adapter not in it is
	// an unknown adapter.
	Adapters []AdapterSpec
}

func (o Options) getenv() func(string) string {
	if o.Getenv != nil {
		return o.Getenv
	}
	return os.Getenv
}
