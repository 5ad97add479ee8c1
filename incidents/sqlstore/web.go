package sqlstore

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// FindDrills returns the agent's drills at or after since, oldest first: the
// web view's drill strip. drills_agent (agent, at, id) serves it.
func (s *Store) FindDrills(ctx context.Context, agent string, since time.Time) ([]*incidents.DrillResult, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Agent   string `db:"agent"`
		Adapter string `db:"adapter"`
		At      dbTime `db:"at"`
		OK      bool   `db:"ok"`
		Error   string `db:"error"`
		Actor   string `db:"actor"`
	}
	err := s.sel(ctx, &rows, `SELECT id, agent, adapter, at, ok, error, actor FROM drills
		WHERE agent = ? AND at >= ? ORDER BY at, id`, agent, s.t(since))
	if err != nil {
		return nil, wrap(err, "read drills of %s", agent)
	}
	out := make([]*incidents.DrillResult, 0, len(rows))
	for _, r := range rows {
		actor, err := unactor(r.Actor, "drill actor")
		if err != nil {
			return nil, err
		}
		out = append(out, &incidents.DrillResult{ID: r.ID, Agent: r.Agent, Adapter: r.Adapter, At: r.At.T,
			OK: r.OK, Error: r.Error, Actor: actor})
	}
	return out, nil
}

// WebKey returns the stored key called name, storing fresh first when there
// is none yet; concurrent replicas all end up with the first one stored.
func (s *Store) WebKey(ctx context.Context, name, fresh string) (string, error) {
	err := s.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `INSERT INTO web_keys (name, value, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, fresh, q.t(time.Now()))
		return err
	})
	if err != nil {
		return "", wrap(err, "store web key %s", name)
	}
	var vals []string
	if err := s.sel(ctx, &vals, `SELECT value FROM web_keys WHERE name = ?`, name); err != nil {
		return "", wrap(err, "read web key %s", name)
	}
	if len(vals) == 0 {
		return "", wrap(incidents.Errorf(incidents.ENOTFOUND, "no web key %s", name), "read web key %s", name)
	}
	return vals[0], nil
}
