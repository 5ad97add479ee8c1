package web

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Waterfall limits. Each bar costs at most three SVG elements (the bar, its
// hover title, an error mark), each breach two, each tick two: 500 bars keep
// the chart under the 2,000 elements a phone renders without stalling.
const (
	maxBars     = 500
	maxBreaches = 40
	maxLanes    = 8
	chartWidth  = 1000.0
	laneHeight  = 44.0 // with three lanes or more; fewer get tallLane
	tallLane    = 120.0
	chartTop    = 18.0
	axisHeight  = 22.0
	paletteSize = 8
)

// waterfall is the session chart, laid out for the template.
type waterfall struct {
	Width, Height string
	Bars          []wfBar
	Breaches      []wfMark
	Ticks         []wfTick
	AxisY         string
	Steps         int // steps drawn, before bucketing
	BucketSize    int // steps per bar; 1 when not bucketed
	MaxTokens     int64
	Legend        []legendItem
}

type wfBar struct {
	X, Y, W, H string
	Class      string
	Title      string
	Err        bool
	ErrX, ErrY string
}

type wfMark struct {
	X, Y, H string
	Title   string
}

type wfTick struct {
	X, TextX, Label string
}

type legendItem struct {
	Class, Label string
}

// bucket is one bar: a step, or consecutive steps merged.
type bucket struct {
	first, last int // 1-based step numbers
	start, end  time.Time
	tokens      int64
	tools       int
	errors      int
	kind        string
	system      string
	systems     map[string]int
	breach      string
	name        string
	errText     string
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// systemClass gives each blast-radius system of the agent a stable colour
// (its position in the config), every other system the "other" colour.
type systemClass map[string]int

func (sc systemClass) class(system string) string {
	if system == "" {
		return ""
	}
	if i, ok := sc[strings.ToLower(system)]; ok {
		return "s" + strconv.Itoa(i%paletteSize)
	}
	return "sx"
}

// buildWaterfall lays steps out over time: x is time, each bar's height its
// tokens, lanes hold steps that overlap (a sequential agent is one lane).
func buildWaterfall(steps []StepView, systems []string) *waterfall {
	wf := &waterfall{Steps: len(steps), BucketSize: 1}
	sc := systemClass{}
	for i, s := range systems {
		sc[strings.ToLower(s)] = i
		if i < paletteSize {
			wf.Legend = append(wf.Legend, legendItem{Class: "s" + strconv.Itoa(i), Label: s})
		}
	}
	if len(steps) == 0 {
		return nil
	}
	order := make([]int, len(steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return steps[a].Start.Compare(steps[b].Start) })
	if len(steps) > maxBars {
		wf.BucketSize = (len(steps) + maxBars - 1) / maxBars
	}
	var buckets []*bucket
	for i := 0; i < len(order); i += wf.BucketSize {
		b := &bucket{first: i + 1, systems: map[string]int{}}
		kinds := map[string]int{}
		for j := i; j < min(i+wf.BucketSize, len(order)); j++ {
			s := steps[order[j]]
			b.last = j + 1
			if b.start.IsZero() || s.Start.Before(b.start) {
				b.start = s.Start
			}
			if e := s.End(); e.After(b.end) {
				b.end = e
			}
			b.tokens += s.Tokens()
			kinds[s.Kind]++
			if s.Kind == "tool" || s.Tool != "" {
				b.tools++
			}
			if s.System != "" {
				b.systems[s.System]++
			}
			if s.Error != "" {
				b.errors++
				if b.errText == "" {
					b.errText = s.Error
				}
			}
			if b.breach == "" {
				b.breach = s.Breach
			}
			if b.name == "" {
				b.name = cmp.Or(s.Name, s.Tool, s.Model, s.Kind)
			}
		}
		b.kind = topKey(kinds)
		if b.tools > 0 {
			b.kind = "tool"
		}
		b.system = topKey(b.systems)
		buckets = append(buckets, b)
	}

	t0, t1 := buckets[0].start, buckets[0].end
	for _, b := range buckets {
		if b.end.After(t1) {
			t1 = b.end
		}
	}
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Millisecond
	}
	for _, b := range buckets {
		wf.MaxTokens = max(wf.MaxTokens, b.tokens)
	}
	x := func(t time.Time) float64 { return float64(t.Sub(t0)) / float64(span) * chartWidth }

	// Greedy lane packing: the first lane free at the bar's start.
	var laneEnd []time.Time
	lanes := make([]int, len(buckets))
	for i, b := range buckets {
		lane := -1
		for l, e := range laneEnd {
			if !e.After(b.start) {
				lane = l
				break
			}
		}
		if lane < 0 && len(laneEnd) < maxLanes {
			lane = len(laneEnd)
			laneEnd = append(laneEnd, time.Time{})
		}
		if lane < 0 { // full: the lane that frees first
			lane = 0
			for l, e := range laneEnd {
				if e.Before(laneEnd[lane]) {
					lane = l
				}
			}
		}
		if b.end.After(laneEnd[lane]) {
			laneEnd[lane] = b.end
		}
		lanes[i] = lane
	}

	lh := laneHeight
	if len(laneEnd) <= 2 {
		lh = tallLane
	}
	for i, b := range buckets {
		h := 4.0
		switch {
		case b.tokens > 0:
			h = 4 + (lh-10)*float64(b.tokens)/float64(wf.MaxTokens)
		case b.kind == "tool":
			h = lh / 2
		}
		bottom := chartTop + float64(lanes[i]+1)*lh - 3
		bx := x(b.start)
		bw := max(x(b.end)-bx, 1.5)
		class := "bar k-" + cssIdent(b.kind)
		if c := sc.class(b.system); c != "" {
			class += " " + c
		}
		if b.errors > 0 {
			class += " err"
		}
		bar := wfBar{X: num(bx), Y: num(bottom - h), W: num(bw), H: num(h), Class: class, Title: b.title(t0)}
		if b.errors > 0 {
			bar.Err, bar.ErrX, bar.ErrY = true, num(bx+bw/2-2), num(bottom-h-6)
		}
		wf.Bars = append(wf.Bars, bar)
		if b.breach != "" && len(wf.Breaches) < maxBreaches {
			wf.Breaches = append(wf.Breaches, wfMark{X: num(bx), Y: num(chartTop - 14),
				H:     num(float64(len(laneEnd))*lh + 14),
				Title: fmt.Sprintf("SLA breach: %s at +%s (step %d)", b.breach, fmtDur(b.start.Sub(t0)), b.first)})
		}
	}
	// Breach marks were sized before every lane existed.
	for i := range wf.Breaches {
		wf.Breaches[i].H = num(float64(len(laneEnd))*lh + 14)
	}
	axisY := chartTop + float64(len(laneEnd))*lh
	wf.AxisY = num(axisY)
	for i := 0; i <= 4; i++ {
		tx := chartWidth * float64(i) / 4
		textX := tx
		switch i {
		case 0:
			textX = 2
		case 4:
			textX = chartWidth - 2
		}
		wf.Ticks = append(wf.Ticks, wfTick{X: num(tx), TextX: num(textX),
			Label: "+" + fmtDur(span*time.Duration(i)/4)})
	}
	wf.Width = num(chartWidth)
	wf.Height = num(axisY + axisHeight)
	return wf
}

func (b *bucket) title(t0 time.Time) string {
	var sb strings.Builder
	if b.first == b.last {
		fmt.Fprintf(&sb, "Step %d: %s", b.first, clipText(b.name, 80))
	} else {
		fmt.Fprintf(&sb, "Steps %d–%d (%d steps)", b.first, b.last, b.last-b.first+1)
	}
	fmt.Fprintf(&sb, " · +%s, %s", fmtDur(b.start.Sub(t0)), fmtDur(b.end.Sub(b.start)))
	fmt.Fprintf(&sb, " · %s tokens", commas(b.tokens))
	if b.tools > 0 && b.first != b.last {
		fmt.Fprintf(&sb, " · %d tool calls", b.tools)
	}
	if b.system != "" {
		fmt.Fprintf(&sb, " · touches %s", clipText(b.system, 40))
	}
	if b.errors > 0 {
		fmt.Fprintf(&sb, " · error: %s", clipText(b.errText, 80))
		if b.errors > 1 {
			fmt.Fprintf(&sb, " (+%d more)", b.errors-1)
		}
	}
	if b.breach != "" {
		fmt.Fprintf(&sb, " · SLA breach: %s", clipText(b.breach, 40))
	}
	return sb.String()
}

func topKey(m map[string]int) string {
	best, n := "", 0
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

// cssIdent keeps a class name to letters, so agent text never shapes markup.
func cssIdent(s string) string {
	s = strings.ToLower(s)
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 || len(s) > 16 {
		return "other"
	}
	return s
}

// fmtDur renders a duration compactly: 850ms, 12.3s, 4m05s, 1h02m.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
