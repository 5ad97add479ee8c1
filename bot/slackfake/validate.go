package slackfake

import (
	"encoding/json"
	"unicode/utf8"
)

// block is the part of a Block Kit block the fake checks.
type block struct {
	Type     string          `json:"type"`
	BlockID  string          `json:"block_id"`
	Text     *text           `json:"text"`
	Fields   []text          `json:"fields"`
	Elements []element       `json:"elements"`
	Label    *text           `json:"label"`
	Element  json.RawMessage `json:"element"`
}

type text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type element struct {
	Type     string `json:"type"`
	Text     any    `json:"text"`
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
	URL      string `json:"url"`
}

// checkBlocks enforces the Block Kit limits Slack answers invalid_blocks for,
// so a renderer that forgets to truncate fails in tests as it would live.
func checkBlocks(raw []byte) string {
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if len(blocks) > 50 {
		return "invalid_blocks"
	}
	if !blocksValid(blocks) {
		return "invalid_blocks"
	}
	return ""
}

func blocksValid(blocks []block) bool {
	ids := map[string]bool{}
	for _, b := range blocks {
		if b.BlockID != "" {
			if ids[b.BlockID] || len(b.BlockID) > 255 {
				return false
			}
			ids[b.BlockID] = true
		}
		if !blockValid(b) {
			return false
		}
	}
	return true
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func blockValid(b block) bool {
	switch b.Type {
	case "header":
		return b.Text != nil && b.Text.Type == "plain_text" && runes(b.Text.Text) > 0 && runes(b.Text.Text) <= 150
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return false
		}
		if b.Text != nil && (runes(b.Text.Text) == 0 || runes(b.Text.Text) > 3000) {
			return false
		}
		if len(b.Fields) > 10 {
			return false
		}
		for _, f := range b.Fields {
			if runes(f.Text) == 0 || runes(f.Text) > 2000 {
				return false
			}
		}
		return true
	case "actions":
		return len(b.Elements) > 0 && len(b.Elements) <= 25 && elementsValid(b.Elements)
	case "context":
		return len(b.Elements) > 0 && len(b.Elements) <= 10
	case "divider", "input", "image", "rich_text", "markdown":
		return b.Type != "input" || (b.Label != nil && runes(b.Label.Text) <= 2000)
	}
	return false
}

func elementsValid(elements []element) bool {
	ids := map[string]bool{}
	for _, e := range elements {
		if e.ActionID != "" {
			if ids[e.ActionID] || len(e.ActionID) > 255 {
				return false
			}
			ids[e.ActionID] = true
		}
		if e.Type != "button" {
			continue
		}
		t, ok := e.Text.(map[string]any)
		if !ok {
			return false
		}
		s, _ := t["text"].(string)
		if runes(s) == 0 || runes(s) > 75 || runes(e.Value) > 2000 || runes(e.URL) > 3000 {
			return false
		}
	}
	return true
}

// checkView enforces the modal limits: title 24, submit and close 24, 100 blocks.
func checkView(view map[string]any) string {
	for _, key := range []string{"title", "submit", "close"} {
		if t, ok := view[key].(map[string]any); ok {
			if s, _ := t["text"].(string); runes(s) > 24 {
				return "invalid_arguments"
			}
		}
	}
	raw, err := json.Marshal(view["blocks"])
	if err != nil {
		return "invalid_arguments"
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil || len(blocks) > 100 || !blocksValid(blocks) {
		return "invalid_arguments"
	}
	if s, _ := view["private_metadata"].(string); runes(s) > 3000 {
		return "invalid_arguments"
	}
	return ""
}
