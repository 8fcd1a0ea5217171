package guide

import (
	"strings"
	"testing"
)

// TestBuildQaTa covers each phrasing family with reports written here
// (the shared vectors of testdata/vectors/guide_text.jsonl add the
// corpus's).
func TestBuildQaTa(t *testing.T) {
	const (
		ll   = "Unilateral pulmonary infection, one infected area, lower left lung."
		ruLl = "Bilateral pulmonary infection, two infected areas, upper right lung and lower left lung."
	)
	cases := []struct{ family, report, want string }{
		{"template", "Unilateral pulmonary infection, one infected area, lower left lung.", ll},
		{"template", "Bilateral lung infection, two lesions, lower left lung and upper right lung.", ruLl},
		{"template variant", "Bilateral pneumonia, two infected areas, left lower zone and right upper zone.", ruLl},
		{"lobes", "Airspace opacity in the left lower lobe.", ll},
		{"lobes", "Consolidation of the right upper lobe and the left lower lobe.", ruLl},
		{"lobes", "Opacity in the lingula.", "Unilateral pulmonary infection, one infected area, middle left lung."},
		{"lobes", "Right middle lobe pneumonia.", "Unilateral pulmonary infection, one infected area, middle right lung."},
		{"abbreviations", "Consolidation LLL.", ll},
		{"abbreviations", "RUL and LLL consolidation.", ruLl},
		{"zone adjectives", "Patchy opacity in the left basal region.", ll},
		{"zone adjectives", "Right apical shadowing. Left basal opacity.", ruLl},
		{"zone adjectives", "Bibasilar opacities.", "Bilateral pulmonary infection, two infected areas, lower right lung and lower left lung."},
		{"zone adjectives", "Bilateral patchy opacities in the lower zones.", "Bilateral pulmonary infection, two infected areas, lower right lung and lower left lung."},
		{"zone adjectives", "Retrocardiac consolidation.", ll},
		{"synonyms", "Infiltrate in the left lower zone.", ll},
		{"synonyms", "Ground-glass opacity, left lower zone.", ll},
		{"synonyms", "Airspace disease at the left base.", ll},
		{"typos", "Opacity in the lfet lwoer zone.", ll},
		{"typos", "Opactiy in the rigth uper zone and left lower zone.", ruLl},
		{"negated other side", "The right lung is clear. Opacity in the left lower zone.", ll},
		{"negated other side", "Consolidation in the left lower lobe, right lung clear.", ll},
		{"negated other side", "Lungs are clear except for consolidation in the LLL.", ll},
		{"negated other side", "Patchy consolidation left lower zone, otherwise clear.", ll},
		{"negated other side", "Consolidation in the LLL, the remainder of the lungs are clear.", ll},
		{"negated other side", "Consolidation in the LLL, lungs elsewhere clear.", ll},
		{"zone adjectives", "Streaky opacities at the lung bases.", "Bilateral pulmonary infection, two infected areas, lower right lung and lower left lung."},
		{"several, one negated", "Opacities in the right upper and left lower zones; no consolidation in the left upper zone.", ruLl},
		{"several, one negated", "Consolidation in the LLL, not in the RUL.", ll},
		{"hedges", "Possible consolidation at the left base.", ll},
		{"hedges", "Cannot exclude early consolidation in the right base. Opacity in the LLL.", ll},
		{"history", "History of right upper lobe pneumonia. New consolidation in the LLL.", ll},
		{"comparison", "Compared with the prior study, there is new opacity in the RUL and unchanged LLL consolidation.", ruLl},
		{"comparison", "Previously seen right upper lobe opacity has resolved. Left lower lobe consolidation persists.", ll},
		{"tubes and lines", "ET tube tip 4 cm above the carina. Right IJ line tip in the SVC. Opacity in the left lower zone.", ll},
		{"tubes and lines", "Left pleural effusion and right lower lobe consolidation.", "Unilateral pulmonary infection, one infected area, lower right lung."},
		{"upper case", "OPACITY LEFT LOWER ZONE. NO EFFUSION.", ll},
		{"numbered list", "IMPRESSION:\n1. Consolidation in the right upper lobe.\n2. Opacity at the left base.\n3. No effusion.", ruLl},
		{"sectioned", "EXAMINATION: Chest PA\nCLINICAL HISTORY: Cough, right upper chest pain, pneumonia?\nCOMPARISON: None.\n" +
			"FINDINGS: Heart size is normal. No pleural effusion or pneumothorax. There is patchy consolidation in the right upper and left lower zones.\n" +
			"IMPRESSION:\n1. Right upper and left lower zone consolidation, likely infective.\n2. No effusion.", ruLl},
		{"negative", "No acute cardiopulmonary process.", ""},
		{"negative", "Lungs are clear. No focal consolidation, effusion or pneumothorax.", ""},
		{"hedges", "?consolidation right mid zone", "Unilateral pulmonary infection, one infected area, middle right lung."},
		{"no side", "Patchy opacity in the lower zone.", ""},
	}
	for _, c := range cases {
		got := Build(c.report, Options{Form: FormQaTa})
		if got.Text != c.want {
			t.Errorf("%s: %q\n got %q (%s)\nwant %q", c.family, c.report, got.Text, got.Summary(), c.want)
		}
		if (c.want == "") == got.Described() {
			t.Errorf("%s: %q: Described() = %v with text %q", c.family, c.report, got.Described(), got.Text)
		}
	}
}

func TestBuildRules(t *testing.T) {
	if r := Build("No acute cardiopulmonary process.", Options{Form: FormQaTa}); r.Rule != RuleNoTarget {
		t.Errorf("normal report: rule %s, want %s", r.Rule, RuleNoTarget)
	}
	if r := Build("Patchy opacity.", Options{Form: FormQaTa}); r.Rule != RuleUnlocated {
		t.Errorf("finding without a place: rule %s, want %s", r.Rule, RuleUnlocated)
	}
	r := Build("FINDINGS: opacity LLL.\nIMPRESSION: pneumonia.", Options{Form: FormSections})
	if r.Rule != RuleSections || r.Text != "opacity LLL. pneumonia." {
		t.Errorf("sections form: %s %q", r.Rule, r.Text)
	}
	// The summary names no words of the report.
	r = Build("Mr Smith's opacity in the left lower zone.", Options{Form: FormQaTa})
	if s := r.Summary(); strings.Contains(strings.ToLower(s), "smith") || !strings.HasPrefix(s, "zones (1 zones)") {
		t.Errorf("summary %q", s)
	}
	// Wanted sections only; context sections are never read.
	r = Build("HISTORY: right lower lobe pneumonia.\nFINDINGS: Opacity in the LLL.", Options{Form: FormQaTa})
	if len(r.Zones) != 1 || r.Zones[0] != (Zone{Lower, Left}) {
		t.Errorf("history section read: %v", r.Zones)
	}
	r = Build("FINDINGS: Opacity in the LLL.\nIMPRESSION: Right upper lobe pneumonia.", Options{Form: FormQaTa, Sections: []string{"impression"}})
	if len(r.Zones) != 1 || r.Zones[0] != (Zone{Upper, Right}) {
		t.Errorf("sections = [impression]: %v", r.Zones)
	}
}

func TestBuildBudget(t *testing.T) {
	report := "Opacities in the right upper, middle and lower zones and the left lower zone."
	r := Build(report, Options{Form: FormQaTa})
	if len(r.Zones) != 3 || len(r.Omitted) != 1 {
		t.Fatalf("max zones: kept %v omitted %v", r.Zones, r.Omitted)
	}
	r = Build(report, Options{Form: FormQaTa, Fits: func(s string) bool { return len(s) <= 70 }})
	if len(r.Zones) != 1 || len(r.Text) > 70 {
		t.Errorf("budget: kept %v, text %q", r.Zones, r.Text)
	}
	// A whole lung is less specific than a named zone and goes first.
	r = Build("Opacity throughout the right lung and in the left lower lobe.", Options{Form: FormQaTa, MaxZones: 1})
	if len(r.Zones) != 1 || r.Zones[0] != (Zone{Lower, Left}) {
		t.Errorf("specific first: %v", r.Zones)
	}
}

func TestBuildMosMed(t *testing.T) {
	cases := []struct{ report, want string }{
		{"Ground-glass opacities in both lungs, CT-1, involvement under 25%.", "Ground-glass opacities in both lungs, CT-1, involvement under 25%."},
		{"Viral pneumonia, left lung affected, CT-2, involvement 25-50%.", "Ground-glass opacities in the left lung, CT-2, involvement 25-50%."},
		{"Patchy GGO in the right lung; the left lung is clear.", "Ground-glass opacities in the right lung."},
		{"Bilateral peripheral ground-glass opacities.", "Ground-glass opacities in both lungs."},
		{"No ground-glass opacities. Lungs clear.", ""},
	}
	for _, c := range cases {
		if got := Build(c.report, Options{Form: FormMosMed}); got.Text != c.want {
			t.Errorf("%q\n got %q (%s)\nwant %q", c.report, got.Text, got.Summary(), c.want)
		}
	}
}

func TestTypos(t *testing.T) {
	cases := []struct{ word, want string }{
		{"lfet", "left"}, {"rigth", "right"}, {"lwoer", "lower"}, {"opacty", "opacity"}, {"consolidaton", "consolidation"},
		{"light", ""}, {"basis", ""}, {"lateral", ""}, {"unilateral", ""}, {"injection", ""}, {"the", ""}, {"lef", ""},
	}
	for _, c := range cases {
		_, got := lex.correct(c.word)
		if got != c.want {
			t.Errorf("correct(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func FuzzBuild(f *testing.F) {
	for _, s := range []string{
		"Airspace opacity in the left lower lobe.", "FINDINGS:\n1. RUL and LLL consolidation.\n2. No effusion.",
		"?consolidation right mid zone", "e.g. 1.5 cm", "Lungs are clear except for consolidation in the LLL.",
		"r/o pneumonia; h/o TB", "\u00e9\u0301\u0000;;..", "Ground-glass opacities in both lungs, CT-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, form := range []Form{FormQaTa, FormMosMed} {
			r := Build(s, Options{Form: form, Fits: func(x string) bool { return len(x) < 200 }})
			if r.Described() != (r.Text != "") {
				t.Fatalf("Described %v with text %q", r.Described(), r.Text)
			}
			if len(r.Zones) > 3 {
				t.Fatalf("%d zones", len(r.Zones))
			}
			_ = r.Summary()
		}
	})
}
