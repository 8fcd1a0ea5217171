package segment

import (
	"strings"
	"testing"
)

// A segment's optional "color" is [R, G, B], 0..255 each; RGB gives it to
// the SEG writer, or nil when the manifest names none.
func TestManifestSegmentColor(t *testing.T) {
	m, err := LoadManifest(copyModel(t, func(m map[string]any) {
		m["segments"].([]any)[0].(map[string]any)["color"] = []int{230, 80, 0}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Segments[0].RGB(); got == nil || *got != [3]uint8{230, 80, 0} {
		t.Errorf("RGB() = %v, want [230 80 0]", got)
	}
	m, err = LoadManifest(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Segments[0].RGB(); got != nil {
		t.Errorf("RGB() = %v without a color, want nil", *got)
	}

	for name, color := range map[string]any{
		"too few values": []int{1, 2},
		"out of range":   []int{0, 256, 0},
		"negative":       []int{-1, 0, 0},
	} {
		_, err := LoadManifest(copyModel(t, func(m map[string]any) {
			m["segments"].([]any)[0].(map[string]any)["color"] = color
		}))
		if err == nil || !strings.Contains(err.Error(), "segments[0].color") {
			t.Errorf("%s: err = %v, want one naming segments[0].color", name, err)
		}
	}
}
