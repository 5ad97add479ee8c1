package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/words"
)

// The blast-radius checklist and the postmortem from the shell, with the
// rules and the timeline of the Slack thread (the same service calls):
//
//	reins checklist ID                                  start it if needed, list the items
//	reins checklist ID answer ITEM CHOICE [--details T] answer ITEM (its number or key)
//	reins postmortem ID questions                       list the questions and their answers
//	reins postmortem ID answer QUESTION TEXT...         answer QUESTION (its number or key)

func cmdChecklist(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("checklist")
	details := fs.String("details", "", "with impact: what was found, and how many records, messages or users")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := parseID(pos[:min(len(pos), 1)])
	if err != nil {
		return err
	}
	var item, choice string
	switch {
	case len(pos) == 1:
	case len(pos) == 4 && pos[1] == "answer":
		item = pos[2]
		var ok bool
		if choice, ok = incidents.ParseChoice(pos[3]); !ok {
			return usageError{fmt.Sprintf("unknown answer %q: use no-impact, impact, unknown or n/a", pos[3])}
		}
		if choice == incidents.ChoiceImpactFound && strings.TrimSpace(*details) == "" {
			return usageError{"impact needs --details: what was found, and how many records, messages or users"}
		}
	default:
		return usageError{"say `reins checklist ID` to list it, or `reins checklist ID answer ITEM no-impact|impact|unknown|n/a [--details TEXT]`"}
	}
	m, err := e.openMain(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	actor := osActor()
	if item == "" {
		c, err := m.Aftermath.Checklist(ctx, id)
		if incidents.ErrorCode(err) == incidents.ENOTFOUND {
			if _, ferr := m.Service.FindIncident(ctx, id); ferr != nil {
				return fmt.Errorf("%s", incidents.ErrorMessage(ferr))
			}
			if c, err = m.Aftermath.StartChecklist(ctx, actor, id); err == nil {
				fmt.Fprintf(e.stdout, "Started the blast-radius checklist of incident #%d (%s).\n\n", id, words.Count(len(c.Items), "item"))
			}
		}
		if err != nil {
			return fmt.Errorf("%s", incidents.ErrorMessage(err))
		}
		return printChecklist(e.stdout, id, c)
	}
	c, err := m.Aftermath.Checklist(ctx, id)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	it := c.FindItem(item)
	if it == nil {
		return fmt.Errorf("incident #%d's checklist has no item %q: `reins checklist %d` lists them with their numbers", id, item, id)
	}
	if _, err := m.Aftermath.AnswerChecklist(ctx, actor, id, it.Key, choice, *details); err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	c, err = m.Aftermath.Checklist(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Item %d of incident #%d answered %s by %s (%d of %d answered).\n", it.Position, id,
		incidents.ChoiceWords(choice), actor.Name, c.Answered(), len(c.Items))
	if next := c.Next(); next != nil {
		fmt.Fprintf(e.stdout, "Next: %d. %s\n  `reins checklist %d answer %d no-impact|impact|unknown|n/a`\n", next.Position, next.Question, id, next.Position)
	}
	return nil
}

func printChecklist(w io.Writer, id int64, c *incidents.Checklist) error {
	fmt.Fprintf(w, "Checklist of incident #%d: %d of %d answered.\n", id, c.Answered(), len(c.Items))
	for _, it := range c.Items {
		answer := "[" + incidents.ChoiceWords(it.Choice) + "]"
		if it.AnsweredBy != nil {
			answer += " by " + firstNonEmpty(it.AnsweredBy.Name, it.AnsweredBy.ID)
		}
		fmt.Fprint(w, wrapText(fmt.Sprintf("%2d. %s (%s) %s", it.Position, it.Question, it.Key, answer), 100, "    "))
		if it.Details != "" {
			fmt.Fprint(w, wrapText("    found: "+strings.Join(strings.Fields(it.Details), " "), 100, "    "))
		}
	}
	if next := c.Next(); next != nil {
		fmt.Fprintf(w, "\nAnswer with `reins checklist %d answer %d no-impact|impact|unknown|n/a` (impact needs --details TEXT).\n", id, next.Position)
	}
	return nil
}

// postmortemAnswer runs `reins postmortem ID questions|answer …`.
func postmortemAnswer(ctx context.Context, e *env, id int64, pos []string) error {
	var key, text string
	switch {
	case pos[0] == "questions" && len(pos) == 1:
	case pos[0] == "answer" && len(pos) >= 3:
		if key = incidents.QuestionKey(pos[1]); key == "" {
			return usageError{fmt.Sprintf("unknown question %q: `reins postmortem %d questions` lists them", pos[1], id)}
		}
		text = strings.Join(pos[2:], " ")
	default:
		return usageError{"say `reins postmortem ID questions`, or `reins postmortem ID answer QUESTION TEXT...`"}
	}
	m, err := e.openMain(ctx, key == "")
	if err != nil {
		return err
	}
	defer m.Close()
	if key != "" {
		if err := m.Aftermath.AnswerPostmortem(ctx, osActor(), id, key, text); err != nil {
			return fmt.Errorf("%s", incidents.ErrorMessage(err))
		}
	}
	pm, err := m.Aftermath.Postmortem(ctx, id)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	answered := 0
	qs := incidents.PostmortemQuestions()
	for _, q := range qs {
		if pm.Answer(q.Key) != "" {
			answered++
		}
	}
	if key != "" {
		fmt.Fprintf(e.stdout, "Answered %q for incident #%d (%d of %d questions answered).\n", key, id, answered, len(qs))
		if answered == len(qs) {
			fmt.Fprintf(e.stdout, "Every question is answered: `reins postmortem %d` prints the postmortem.\n", id)
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "Postmortem questions of incident #%d: %d of %d answered.\n", id, answered, len(qs))
	for i, q := range qs {
		state := "unanswered"
		if a := pm.Answer(q.Key); a != "" {
			state = "answered: " + clipCell(strings.Join(strings.Fields(a), " "), 60)
		}
		fmt.Fprintf(e.stdout, "%d. %s (%s)\n   %s\n", i+1, q.Question, q.Key, state)
	}
	fmt.Fprintf(e.stdout, "\nAnswer with `reins postmortem %d answer NUMBER|KEY TEXT...`.\n", id)
	return nil
}

// commandDetails is the longer help of commands whose words need it,
// printed by `reins COMMAND --help`.
var commandDetails = map[string]string{
	"checklist": `  reins checklist 42                                  start the checklist if needed and list its items
  reins checklist 42 answer 3 no-impact               answer item 3 (its number, or its key: blast:salesforce)
  reins checklist 42 answer 3 impact --details "12 refunds to 3 customers"
  reins checklist 42 answer std:containment n/a

Answers: no-impact, impact (needs --details: what was found and how much), unknown, n/a.
An answer can be changed by answering again; each answer is on the incident's timeline.
`,
	"postmortem": `  reins postmortem 42                                 print the postmortem (Markdown)
  reins postmortem 42 --format json                   the same as JSON
  reins postmortem 42 questions                       the questions, numbered, with their answers
  reins postmortem 42 answer root_cause A prompt change removed the refund cap.
  reins postmortem 42 answer 5 "alice: restore the refund cap (due 2026-03-09)"

QUESTION is a number from ` + "`questions`" + ` or a key: summary, root_cause, went_well,
went_poorly, action_items, sla_changes. Answering again replaces the answer.
`,
	"kill": `  reins kill support-bot --reason "refunds to wrong accounts"      halt the whole agent
  reins kill support-bot s-1 s-2 --reason "loops"                  halt two sessions
  (--session ID, repeatable, is the same as naming the session after the agent)
`,
	"resume": `  reins resume support-bot              lift the agent's halt
  reins resume support-bot s-otel-3     lift the halt of one session
`,
}
