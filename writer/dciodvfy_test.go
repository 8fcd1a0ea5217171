package writer

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tmcad/internal/testpeers"
)

// allowRule is one line of testdata/dciodvfy-allow.txt: a regular expression
// that a whole dciodvfy Warning line must match, and why it is acceptable.
type allowRule struct {
	re     *regexp.Regexp
	reason string
}

func loadAllowList(t *testing.T) []allowRule {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "dciodvfy-allow.txt"))
	if err != nil {
		t.Fatalf("opening allow-list: %v", err)
	}
	defer f.Close()
	var rules []allowRule
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, reason, ok := strings.Cut(line, " ## ")
		if !ok || strings.TrimSpace(reason) == "" {
			t.Fatalf("allow-list line %d: want `REGEXP ## reason`", n)
		}
		re, err := regexp.Compile("^(?:" + strings.TrimSpace(pat) + ")$")
		if err != nil {
			t.Fatalf("allow-list line %d: %v", n, err)
		}
		rules = append(rules, allowRule{re, reason})
	}
	return rules
}

// runDciodvfy validates a SEG file and returns its Error and Warning lines.
func runDciodvfy(t *testing.T, path string) (errs, warns []string, out string) {
	t.Helper()
	bin := testpeers.RequireTool(t, "dciodvfy")
	b, _ := exec.Command(bin, "-new", path).CombinedOutput() // exit status is not meaningful
	out = string(b)
	sawIOD := false
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "Segmentation":
			sawIOD = true
		case strings.Contains(l, "Error"):
			errs = append(errs, l)
		case strings.Contains(l, "Warning"):
			warns = append(warns, l)
		}
	}
	if !sawIOD {
		errs = append(errs, "dciodvfy did not recognise the file as a Segmentation IOD")
	}
	return errs, warns, out
}

func TestDciodvfy(t *testing.T) {
	rules := loadAllowList(t)
	dir := t.TempDir()
	for _, c := range conformanceCases(t) {
		t.Run(c.name, func(t *testing.T) {
			seg, err := EncodeSEG(c.src, c.input(), c.desc)
			if err != nil {
				t.Fatalf("EncodeSEG: %v", err)
			}
			p := filepath.Join(dir, c.name+".dcm")
			if err := os.WriteFile(p, seg.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			errs, warns, out := runDciodvfy(t, p)
			if len(errs) > 0 {
				t.Errorf("dciodvfy reports %d errors:\n%s", len(errs), out)
			}
		next:
			for _, w := range warns {
				for _, r := range rules {
					if r.re.MatchString(w) {
						continue next
					}
				}
				t.Errorf("dciodvfy warning not in testdata/dciodvfy-allow.txt: %s", w)
			}
		})
	}
}
