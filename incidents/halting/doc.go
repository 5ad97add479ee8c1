// Package halting is the halts: those a person asks for (Service: the kill
// authority check, the halt through the agent's adapter and its
// verification, the resume gate and probation, halts a stopped process left
// unfinished), those no person asks for (Policy: an SLA breach's on_breach,
// its queue of waiting sessions, the dead-man), and the kill switches'
// drills (Drills). Three small types, not one: each job or caller takes only
// the one it uses (the guard the Policy, the jobs the Policy and the Drills,
// Slack and the API the Service).
//
// A halt by policy goes through the same path as a person's, without the
// authority check: Policy embeds the Service. The model they share with
// the guard and the views (Halt, HaltCommand, AutoHaltCommand, the
// containment modes) is in incidents; the pages of a failed halt and of the
// waiting sessions are delivered there (deliver_page.go).
package halting
