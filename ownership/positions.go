package ownership

import (
	"runtime"
	"sync"
	"weak"
)

// positions maps a setting's path ("agents.support-bot.kill_authority.users[1]")
// to its line, so checks made after loading (reins validate --online) can
// report at the item rather than at the agent.
type positions map[string]int

func (ps positions) set(path string, line int) {
	if ps != nil && line > 0 {
		ps[path] = line
	}
}

// registryPositions holds each loaded Registry's positions. Registry is a
// shared contract with no field for them; keying by weak pointer lets a
// reloaded-away Registry and its positions be collected together.
var registryPositions sync.Map // weak.Pointer[Registry] -> positions

func rememberPositions(r *Registry, ps positions) {
	wp := weak.Make(r)
	registryPositions.Store(wp, ps)
	runtime.AddCleanup(r, func(wp weak.Pointer[Registry]) { registryPositions.Delete(wp) }, wp)
}

// line returns the line of the first of paths whose position is known (callers
// pass the item, then its list, then its agent), and 0 when none is.
func (r *Registry) line(paths ...string) int {
	v, ok := registryPositions.Load(weak.Make(r))
	if !ok {
		return 0
	}
	ps := v.(positions)
	for _, p := range paths {
		if l, ok := ps[p]; ok {
			return l
		}
	}
	return 0
}
