package sqlstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func newChecklist(incidentID int64) *incidents.Checklist {
	return &incidents.Checklist{IncidentID: incidentID, CreatedAt: t0, CreatedBy: ana, LastActivityAt: t0,
		Items: []*incidents.ChecklistItem{
			{Key: "blast:salesforce", Position: 1, Question: "Did it write to Salesforce?", Check: "recent updates",
				Owner: "@sales-ops", Link: "https://sf.example/?s=s1"},
			{Key: "std:containment", Position: 2, Question: "Is it contained?"},
		}}
}

func TestChecklist(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		c := newChecklist(inc.ID)
		if err := s.CreateChecklist(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindChecklist(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("FindChecklist =\n%+v\nwant\n%+v", got, c)
		}
		answered, nudged, snoozed := t0.Add(time.Minute), t0.Add(30*time.Minute), t0.Add(2*time.Hour)
		c.Items[0].Choice, c.Items[0].Details = incidents.ChoiceImpactFound, "12 records overwritten"
		c.Items[0].AnsweredBy, c.Items[0].AnsweredAt, c.Items[0].PostedTS = &ana, &answered, "1.5"
		c.LastActivityAt, c.NudgeCount, c.LastNudgedAt, c.SnoozedUntil = answered, 1, &nudged, &snoozed
		c.RemindersStopped = true
		if err := s.UpdateChecklist(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err = s.FindChecklist(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("FindChecklist after update =\n%+v\nwant\n%+v", got, c)
		}
	})
}

func TestChecklistErrors(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		if err := s.CreateChecklist(ctx, newChecklist(inc.ID)); err != nil {
			t.Fatal(err)
		}
		t.Run("ErrCreatedTwice", func(t *testing.T) {
			wantCode(t, s.CreateChecklist(ctx, newChecklist(inc.ID)), incidents.ECONFLICT)
		})
		t.Run("ErrCreatedTwiceInTx", func(t *testing.T) {
			// The conflict must not poison the transaction on PostgreSQL.
			err := s.InTx(ctx, func(q incidents.Queries) error {
				wantCode(t, q.CreateChecklist(ctx, newChecklist(inc.ID)), incidents.ECONFLICT)
				_, err := q.FindChecklist(ctx, inc.ID)
				return err
			})
			if err != nil {
				t.Errorf("transaction after a conflict: %v", err)
			}
		})
		t.Run("ErrUnknownIncident", func(t *testing.T) {
			wantCode(t, s.CreateChecklist(ctx, newChecklist(404)), incidents.ENOTFOUND)
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			_, err := s.FindChecklist(ctx, 404)
			wantCode(t, err, incidents.ENOTFOUND)
			wantCode(t, s.UpdateChecklist(ctx, newChecklist(404)), incidents.ENOTFOUND)
		})
		t.Run("ErrUnknownItem", func(t *testing.T) {
			c := newChecklist(inc.ID)
			c.Items[1].Key = "std:nope"
			wantCode(t, s.UpdateChecklist(ctx, c), incidents.ENOTFOUND)
		})
	})
}

func TestFindUnfinishedChecklists(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		unfinished, done, closed := open(t, s, "a", ""), open(t, s, "b", ""), open(t, s, "c", "")
		for _, inc := range []*incidents.Incident{unfinished, done, closed} {
			if err := s.CreateChecklist(ctx, newChecklist(inc.ID)); err != nil {
				t.Fatal(err)
			}
		}
		c := newChecklist(done.ID)
		for _, it := range c.Items {
			it.Choice = incidents.ChoiceNoImpact
		}
		if err := s.UpdateChecklist(ctx, c); err != nil {
			t.Fatal(err)
		}
		closed.Status, closed.ResolvedAt = incidents.StatusResolved, &t0
		if err := s.UpdateIncident(ctx, closed); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindUnfinishedChecklists(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []*incidents.Checklist{newChecklist(unfinished.ID)}; !reflect.DeepEqual(got, want) {
			t.Errorf("FindUnfinishedChecklists =\n%+v\nwant\n%+v", got, want)
		}
	})
}

func TestPostmortem(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		a1 := &incidents.PostmortemAnswer{IncidentID: inc.ID, Key: "summary", Text: "first", Actor: ana, At: t0}
		a2 := &incidents.PostmortemAnswer{IncidentID: inc.ID, Key: "root_cause", Text: "prompt", Actor: ana, At: t0.Add(time.Minute)}
		a1b := &incidents.PostmortemAnswer{IncidentID: inc.ID, Key: "summary", Text: "better", Actor: incidents.System, At: t0.Add(2 * time.Minute)}
		for _, a := range []*incidents.PostmortemAnswer{a1, a2, a1b} {
			if err := s.SavePostmortemAnswer(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.FindPostmortemAnswers(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := []*incidents.PostmortemAnswer{a2, a1b}; !reflect.DeepEqual(got, want) {
			t.Errorf("FindPostmortemAnswers =\n%+v\nwant\n%+v", got, want)
		}

		_, err = s.FindPostmortemDoc(ctx, inc.ID)
		wantCode(t, err, incidents.ENOTFOUND)
		doc := &incidents.PostmortemDoc{IncidentID: inc.ID, Markdown: "# Postmortem", RenderedAt: t0}
		if err := s.SavePostmortemDoc(ctx, doc); err != nil {
			t.Fatal(err)
		}
		reminded := t0.Add(48 * time.Hour)
		doc.Markdown, doc.Finished, doc.PostedTS, doc.RemindCount, doc.LastRemindedAt = "# Done", true, "9.9", 1, &reminded
		if err := s.SavePostmortemDoc(ctx, doc); err != nil {
			t.Fatal(err)
		}
		gotDoc, err := s.FindPostmortemDoc(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotDoc, doc) {
			t.Errorf("FindPostmortemDoc = %+v, want %+v", gotDoc, doc)
		}
		err = s.SavePostmortemAnswer(ctx, &incidents.PostmortemAnswer{IncidentID: 404, Key: "summary"})
		wantCode(t, err, incidents.ENOTFOUND)
	})
}
