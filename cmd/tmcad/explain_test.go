package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `tmcad explain-report` shows each sentence's outcome, the guide text and
// its tokens, for a report file in any format tmcad reads.
func TestExplainReport(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "ACC1.txt")
	text := "CLINICAL HISTORY: Right chest pain.\nFINDINGS: The right lung is clear. Patchy consolidation in the lfet lower lobe.\nIMPRESSION: Possible left basal pneumonia.\n"
	if err := os.WriteFile(report, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "explain-report", report, "--model", shippedModel)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"sections read: FINDINGS, IMPRESSION",
		`dropped  the right lung is clear`, `negated by "is clear"`,
		"kept     patchy consolidation in the lfet lower lobe", "read lfet → left",
		"(hedged)",
		"rule:       zones (1 zones); sentences: 2 kept, 1 dropped",
		"guide text: Unilateral pulmonary infection, one infected area, lower left lung.",
		"tokens:     ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain-report output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chest pain") {
		t.Errorf("the history section was read:\n%s", out)
	}
	normal := filepath.Join(dir, "ACC2.txt")
	if err := os.WriteFile(normal, []byte("No acute cardiopulmonary process.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, "explain-report", normal, "--model", shippedModel); code != 0 || !strings.Contains(out, "no target described; reports.no_target = record") {
		t.Errorf("normal report: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "explain-report", filepath.Join(dir, "missing.txt"), "--model", shippedModel); code == 0 {
		t.Error("a missing report file gave exit 0")
	}
}
