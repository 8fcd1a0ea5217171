package dicomio

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSafePathComponent(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.840.113619.2.55.3": "1.2.840.113619.2.55.3",
		"":                      "_",
		".":                     "_.",
		"..":                    "_..",
		"../../etc/passwd":      "_.._.._etc_passwd",
		`a\b`:                   "a_b",
		"ACC 12/3\x00\n":        "ACC_12_3__",
		"Ünïcødé":               "_n_c_d_",
		".hidden":               "_.hidden",
	} {
		if got := SafePathComponent(in); got != want {
			t.Errorf("SafePathComponent(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("1.2", 100)
	a, b := SafePathComponent(long), SafePathComponent(long+"4")
	if len(a) != MaxPathComponent || a == b {
		t.Errorf("long values: %q %q", a, b)
	}
}

func FuzzSafePathComponent(f *testing.F) {
	for _, s := range []string{"..", "a/b", "1.2.3", "\x00", strings.Repeat("x", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := SafePathComponent(s)
		if out == "" || out == "." || out == ".." || len(out) > MaxPathComponent || strings.ContainsAny(out, `/\`) {
			t.Fatalf("unsafe %q -> %q", s, out)
		}
		if j := filepath.Join("/base", out); filepath.Dir(j) != "/base" {
			t.Fatalf("escapes: %q -> %q", s, j)
		}
		for _, r := range out {
			if r < 0x20 || r > 0x7e {
				t.Fatalf("non-printable in %q", out)
			}
		}
	})
}
