package ownership

// positions maps a setting's path ("agents.support-bot.kill_authority.users[1]")
// to its line, so checks made after loading (reins validate --online) can
// report at the item rather than at the agent.
type positions map[string]int

func (ps positions) set(path string, line int) {
	if ps != nil && line > 0 {
		ps[path] = line
	}
}

func rememberPositions(r *Registry, ps positions) { r.pos = ps }

// line returns the line of the first of paths whose position is known (callers
// pass the item, then its list, then its agent), and 0 when none is.
func (r *Registry) line(paths ...string) int {
	for _, p := range paths {
		if l, ok := r.pos[p]; ok {
			return l
		}
	}
	return 0
}
