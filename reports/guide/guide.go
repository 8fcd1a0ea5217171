// Package guide turns a radiology report into the guide text of a TMCA
// model: the one sentence, in the form the model was trained on, that
// names the targets the report describes.
//
// The steps, each recorded for `tmcad explain-report`:
//
//  1. Sections: the wanted sections (FINDINGS and IMPRESSION by default);
//     a report without them is read whole, less its context sections
//     (history, technique, comparison, examination, recommendation).
//  2. Sentences, split so that abbreviations, decimals and numbered lists
//     survive.
//  3. Words matched against the lexicon (lexicon.txt), longest phrase
//     first; a word that is no lexicon word may be read as a typo of one.
//  4. NegEx-style scopes: negated, uncertain and historical statements are
//     dropped; hedged ones are kept.
//  5. Places: sides, levels and lobes grouped into lung zones, each given
//     to the finding it describes; a place of a non-target noun (an
//     effusion, a line) is no target, and a place without a side is none
//     either (a side is never guessed).
//  6. The zones of every kept statement, rendered in the model's form.
package guide

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"tmcad/reports"
)

// Form names the sentence form a model was trained on.
type Form string

// The forms the normaliser renders.
const (
	// FormQaTa is QaTa-COV19's: "Bilateral pulmonary infection, two
	// infected areas, middle right lung and lower left lung."
	FormQaTa Form = "qata-cov19"
	// FormMosMed is MosMedData+'s: "Ground-glass opacities in the right
	// lung." with ", CT-2, involvement 25-50%." when the report states a
	// category.
	FormMosMed Form = "mosmeddata"
	// FormSections passes the wanted sections' text through unchanged:
	// for a model that reads whole reports.
	FormSections Form = "sections"
)

// ValidForm reports whether f is a form the normaliser renders.
func ValidForm(f Form) bool {
	return f == FormQaTa || f == FormMosMed || f == FormSections
}

// Rule names how the guide text came about. It is safe to log: it says
// nothing of the report's content.
type Rule string

// Rules.
const (
	// RuleZones: located findings rendered as lung zones (FormQaTa).
	RuleZones Rule = "zones"
	// RuleSides: located findings rendered as lungs (FormMosMed).
	RuleSides Rule = "sides"
	// RuleNoTarget: the report describes no target finding (a normal
	// report, or every finding negated, uncertain or historical).
	RuleNoTarget Rule = "no_target"
	// RuleUnlocated: the report describes a target finding but names no
	// place of it that the form can express.
	RuleUnlocated Rule = "unlocated"
	// RuleSections: the wanted sections' text, passed through.
	RuleSections Rule = "sections"
)

// Options configures Build.
type Options struct {
	// Sections are the sections that describe the findings, in any case
	// (reports.DefaultSections when nil).
	Sections []string
	// Form is the model's sentence form.
	Form Form
	// MaxZones is the most zones FormQaTa names (3 when 0).
	MaxZones int
	// Fits reports whether a guide text fits the model's token budget
	// without truncation; nil accepts every text. Zones are left out, least
	// specific first, until the text fits.
	Fits func(text string) bool
}

// Statement is one sentence of the report and what became of it.
type Statement struct {
	// Section is the sentence's section ("" outside any).
	Section string
	// Text is the sentence as read (lower case). PHI: never log it.
	Text string
	// Kept is true when the sentence contributes zones to the guide text.
	Kept bool
	// Zones are the zones it contributes.
	Zones []Zone
	// Hedged is true when the radiologist qualified the finding
	// ("possible", "likely") and it was kept.
	Hedged bool
	// Reasons say why parts of the sentence were dropped or kept
	// ("negated by \"no\"", "no target finding"). They quote the lexicon,
	// never the report.
	Reasons []string
	// Typos lists the misspelt words read as lexicon words ("lfet" →
	// "left"). PHI like Text.
	Typos []string
}

// Result is a report's guide text and how it came about.
type Result struct {
	// Text is the guide text; "" when the rule is RuleNoTarget or
	// RuleUnlocated.
	Text string
	// Rule says how Text came about.
	Rule Rule
	// Zones are the zones Text names (FormQaTa), in the model's order.
	Zones []Zone
	// Omitted are located zones left out of Text (over MaxZones or the
	// token budget).
	Omitted []Zone
	// Side is the side Text names (FormMosMed).
	Side Side
	// Category is the MosMedData category the report states ("CT-2"), or "".
	Category string
	// Sections are the sections that were read ("" for text outside any).
	Sections []string
	// Statements are the sentences read, in order.
	Statements []Statement
}

// Summary describes the result without any of the report's content, for
// logs and `tmcad status`: the rule, the number of zones and the sentences
// by outcome.
func (r Result) Summary() string {
	kept, dropped := 0, 0
	for _, s := range r.Statements {
		if s.Kept {
			kept++
		} else {
			dropped++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Rule)
	switch r.Rule {
	case RuleZones:
		fmt.Fprintf(&b, " (%d zones", len(r.Zones))
		if len(r.Omitted) > 0 {
			fmt.Fprintf(&b, ", %d omitted", len(r.Omitted))
		}
		b.WriteString(")")
	case RuleSides:
		fmt.Fprintf(&b, " (%s)", r.Side)
	}
	if r.Rule != RuleSections {
		fmt.Fprintf(&b, "; sentences: %d kept, %d dropped", kept, dropped)
	}
	return b.String()
}

// Described reports whether the report describes a target the model can be
// guided to.
func (r Result) Described() bool {
	return r.Rule == RuleZones || r.Rule == RuleSides || r.Rule == RuleSections
}

// contextSections never guide the model.
var contextSections = map[string]bool{
	"HISTORY": true, "TECHNIQUE": true, "COMPARISON": true, "EXAMINATION": true, "RECOMMENDATION": true,
}

// Build reads a report's text and returns its guide text.
func Build(text string, opts Options) Result {
	want := opts.Sections
	if want == nil {
		want = reports.DefaultSections
	}
	if opts.Form == FormSections {
		t := reports.ExtractSections(text, want)
		return Result{Text: t, Rule: RuleSections}
	}
	if opts.MaxZones <= 0 {
		opts.MaxZones = 3
	}
	parts := chooseParts(splitParts(text), want)
	var res Result
	found := map[Zone]bool{}
	var order []Zone // zones in order of first mention
	specific := map[Zone]bool{}
	var sides Side
	positive := false
	for _, p := range parts {
		res.Sections = appendUnique(res.Sections, p.section)
		toks := tokenize(strings.Join(p.lines, "\n"))
		for _, sent := range sentences(toks) {
			st, zs, spec, pos := readSentence(sent)
			st.Section = p.section
			positive = positive || pos
			for i, z := range zs {
				if !found[z] {
					found[z] = true
					order = append(order, z)
				}
				if spec[i] {
					specific[z] = true
				}
				sides = mergeSide(sides, z.Side)
			}
			if res.Category == "" {
				res.Category = category(sent)
			}
			res.Statements = append(res.Statements, st)
		}
	}
	switch {
	case len(order) > 0 && opts.Form == FormMosMed:
		res.Rule, res.Side = RuleSides, sides
		res.Text = renderMosMed(sides, res.Category)
	case len(order) > 0:
		res.Rule = RuleZones
		res.Zones, res.Omitted = chooseZones(order, specific, opts)
		res.Text = renderQaTa(res.Zones)
	case positive:
		res.Rule = RuleUnlocated
	default:
		res.Rule = RuleNoTarget
	}
	return res
}

// chooseParts picks the parts that describe the findings: the wanted
// sections when the report has any of them with text; otherwise everything
// but the context sections.
func chooseParts(parts []part, want []string) []part {
	wanted := map[string]bool{}
	for _, w := range want {
		if n, _, ok := reports.ParseHeading(w); ok {
			wanted[n] = true
		} else {
			wanted[strings.ToUpper(strings.TrimSpace(w))] = true
		}
	}
	var out []part
	for _, p := range parts {
		if p.section != "" && wanted[p.section] && strings.TrimSpace(strings.Join(p.lines, "")) != "" {
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, p := range parts {
		if !contextSections[p.section] {
			out = append(out, p)
		}
	}
	return out
}

// readSentence finds the target zones of one sentence. It returns the
// statement, its zones with whether each was named specifically (not as a
// whole lung), and whether the sentence has a positive target finding at
// all.
func readSentence(sent []token) (Statement, []Zone, []bool, bool) {
	its := items(sent)
	scope(its)
	st := Statement{Text: sentenceText(sent)}
	for _, it := range its {
		if it.typo != "" {
			st.Typos = append(st.Typos, it.typo)
		}
	}
	positive := false
	for i := range its {
		if its[i].is(kindFinding) && !its[i].dropped() {
			positive = true
		}
	}
	gs := groups(its)
	attach(its, gs)
	resolveSides(gs)
	var zones []Zone
	var spec []bool
	for _, g := range gs {
		place := g.place()
		if len(place) == 0 && g.noSide == "" {
			continue // a side given to a level-only group
		}
		why := dropReason(its, g)
		if why != "" {
			if len(place) > 0 {
				why += " (" + zonesString(place) + ")"
			}
			st.Reasons = append(st.Reasons, why)
			continue
		}
		for _, z := range place {
			if !slices.Contains(zones, z) {
				zones = append(zones, z)
				spec = append(spec, !g.wholeLung)
			}
		}
	}
	st.Zones = zones
	st.Kept = len(zones) > 0
	if st.Kept {
		st.Hedged = slices.ContainsFunc(its, func(it item) bool { return it.is(kindHedge) })
		return st, zones, spec, positive
	}
	if len(st.Reasons) == 0 {
		switch {
		case positive:
			st.Reasons = append(st.Reasons, "finding without a place")
		case slices.ContainsFunc(its, func(it item) bool { return it.is(kindFinding) }):
			st.Reasons = append(st.Reasons, findingDropReason(its))
		default:
			st.Reasons = append(st.Reasons, "no target finding")
		}
	}
	return st, nil, nil, positive
}

// dropReason says why a group names no target, "" when it does.
func dropReason(its []item, g group) string {
	if g.noSide != "" {
		return "place without a side"
	}
	for i := g.first; i <= g.last; i++ {
		if r := itemDrop(its, &its[i]); r != "" {
			return r
		}
	}
	if g.target < 0 {
		if g.other >= 0 {
			return fmt.Sprintf("place of %q, not a target finding", strings.Join(its[g.other].words, " "))
		}
		return "no target finding"
	}
	if r := itemDrop(its, &its[g.target]); r != "" {
		return r
	}
	return ""
}

// findingDropReason explains a sentence whose findings were all dropped.
func findingDropReason(its []item) string {
	for i := range its {
		if its[i].is(kindFinding) {
			if r := itemDrop(its, &its[i]); r != "" {
				return r
			}
		}
	}
	return "no target finding"
}

// itemDrop names the trigger whose scope covers it, "" when none does.
func itemDrop(its []item, it *item) string {
	trigger := func(ks ...kind) string {
		for _, x := range its {
			for _, k := range ks {
				if x.is(k) {
					return strings.Join(x.words, " ")
				}
			}
		}
		return ""
	}
	switch {
	case it.negated:
		return fmt.Sprintf("negated by %q", trigger(kindNegPre, kindNegPost))
	case it.uncertain:
		return fmt.Sprintf("uncertain: %q", trigger(kindUncPre, kindUncPost))
	case it.historical:
		return fmt.Sprintf("historical: %q", trigger(kindHistPre))
	}
	return ""
}

// category finds a MosMedData category ("CT-1" .. "CT-4") in a sentence.
func category(sent []token) string {
	for i := 0; i+1 < len(sent); i++ {
		if sent[i].word != "ct" {
			continue
		}
		j := i + 1
		if sent[j].punct == '-' && j+1 < len(sent) {
			j++
		}
		switch sent[j].word {
		case "1", "2", "3", "4":
			return "CT-" + sent[j].word
		}
	}
	return ""
}

// chooseZones keeps at most opts.MaxZones zones, the specifically named
// first, then in order of mention, and leaves out more until the text fits
// the budget; the kept zones come back in the model's order.
func chooseZones(order []Zone, specific map[Zone]bool, opts Options) (kept, omitted []Zone) {
	prio := slices.Clone(order)
	sort.SliceStable(prio, func(i, j int) bool { return specific[prio[i]] && !specific[prio[j]] })
	n := min(len(prio), opts.MaxZones)
	for ; n > 1 && opts.Fits != nil && !opts.Fits(renderQaTa(sortZones(prio[:n]))); n-- {
	}
	return sortZones(prio[:n]), sortZones(prio[n:])
}

func sortZones(zs []Zone) []Zone {
	out := slices.Clone(zs)
	sort.Slice(out, func(i, j int) bool { return out[i].index() < out[j].index() })
	return out
}

func mergeSide(a, b Side) Side {
	switch {
	case a == NoSide:
		return b
	case a != b:
		return Both
	}
	return a
}

func appendUnique(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// sentenceText joins a sentence's tokens for an explanation.
func sentenceText(sent []token) string {
	var b strings.Builder
	for _, t := range sent {
		if t.punct != 0 {
			if t.punct == '\n' {
				continue
			}
			b.WriteRune(t.punct)
			continue
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") && !strings.HasSuffix(b.String(), "/") {
			b.WriteByte(' ')
		}
		b.WriteString(t.word)
	}
	return b.String()
}
