package dicomio

import (
	"fmt"
	"strings"
)

// Selector says which series the pipeline processes, like MONAI Deploy's
// series selector. The zero value selects every greyscale image series and
// skips instances whose ImageType has DERIVED, SECONDARY or LOCALIZER.
type Selector struct {
	// Modalities admitted (e.g. "CT", "CR", "DX"); empty admits all.
	Modalities []string
	// BodyParts admitted (BodyPartExamined, e.g. "CHEST"); empty admits all.
	// A series without BodyPartExamined is admitted only when BodyParts is
	// empty.
	BodyParts []string
	// SkipImageTypes drops instances whose ImageType has any of these values
	// (case-insensitive). nil means DefaultSkipImageTypes; an empty non-nil
	// slice skips nothing.
	SkipImageTypes []string
	// MinSlices is the smallest number of frames a kept series must have
	// (after dropping skipped instances); 0 or 1 admit single images.
	MinSlices int
}

// DefaultSkipImageTypes are the ImageType values skipped when
// Selector.SkipImageTypes is nil: derived images (reformats, SEGs' own
// outputs), secondary captures and localizers (scouts, topograms).
var DefaultSkipImageTypes = []string{"DERIVED", "SECONDARY", "LOCALIZER"}

// SeriesGroup is the instances of one series, as grouped by GroupSeries.
type SeriesGroup struct {
	SeriesInstanceUID string
	StudyInstanceUID  string
	Modality          string
	Headers           []Header
}

// Paths returns the files of the group, in Headers order.
func (g SeriesGroup) Paths() []string {
	out := make([]string, len(g.Headers))
	for i, h := range g.Headers {
		out[i] = h.Path
	}
	return out
}

// Frames returns the number of frames of the group.
func (g SeriesGroup) Frames() int {
	n := 0
	for _, h := range g.Headers {
		n += h.Frames()
	}
	return n
}

// Skipped is a series, or one instance of a kept series, that Select left
// out, and why. Reasons carry UIDs and attribute values such as Modality,
// never patient attributes.
type Skipped struct {
	SeriesInstanceUID string
	// SOPInstanceUID and Path are set when one instance was dropped from a
	// series (for example a localizer inside a CT series); empty when the
	// whole series was skipped.
	SOPInstanceUID string
	Path           string
	Reason         string
}

// GroupSeries groups headers by SeriesInstanceUID, in order of first
// appearance; within a group headers keep their input order.
func GroupSeries(headers []Header) []SeriesGroup {
	idx := map[string]int{}
	var out []SeriesGroup
	for _, h := range headers {
		i, ok := idx[h.SeriesInstanceUID]
		if !ok {
			i = len(out)
			idx[h.SeriesInstanceUID] = i
			out = append(out, SeriesGroup{SeriesInstanceUID: h.SeriesInstanceUID, StudyInstanceUID: h.StudyInstanceUID, Modality: h.Modality})
		}
		out[i].Headers = append(out[i].Headers, h)
	}
	return out
}

// Select groups headers into series and applies sel: instances with a
// skipped ImageType, without pixel data, or in a transfer syntax LoadSeries
// cannot decode are dropped (each reported); then whole series are skipped
// for their Modality, BodyPartExamined or too few frames. Every skip has a
// reason, for the debug log and `status`. `tmcad process` calls it on every
// file it finds, and StartLoadSelected on a series' files when `tmcad run`
// loads them: one rule for both.
func Select(headers []Header, sel Selector) (kept []SeriesGroup, skipped []Skipped) {
	for _, g := range GroupSeries(headers) {
		k, sk := selectGroup(g, sel)
		skipped = append(skipped, sk...)
		if k != nil {
			kept = append(kept, *k)
		}
	}
	return kept, skipped
}

// selectGroup applies sel to one series: nil when it is skipped as a whole.
func selectGroup(g SeriesGroup, sel Selector) (*SeriesGroup, []Skipped) {
	if g.SeriesInstanceUID == "" {
		return nil, []Skipped{{Reason: fmt.Sprintf("%d file(s) without SeriesInstanceUID", len(g.Headers))}}
	}
	if r := SeriesRuleReason(g.Modality, g.Headers[0].BodyPartExamined, sel); r != "" {
		return nil, []Skipped{{SeriesInstanceUID: g.SeriesInstanceUID, Reason: r}}
	}
	skipTypes := sel.SkipImageTypes
	if skipTypes == nil {
		skipTypes = DefaultSkipImageTypes
	}
	var skipped []Skipped
	var keep []Header
	for _, h := range g.Headers {
		if r := instanceSkipReason(h, skipTypes); r != "" {
			skipped = append(skipped, Skipped{SeriesInstanceUID: g.SeriesInstanceUID, SOPInstanceUID: h.SOPInstanceUID, Path: h.Path, Reason: r})
			continue
		}
		keep = append(keep, h)
	}
	g.Headers = keep
	if len(keep) == 0 {
		return nil, append(skipped, Skipped{SeriesInstanceUID: g.SeriesInstanceUID, Reason: "no instance left after the instance rules"})
	}
	if n := g.Frames(); n < sel.MinSlices {
		return nil, append(skipped, Skipped{SeriesInstanceUID: g.SeriesInstanceUID,
			Reason: fmt.Sprintf("%d frame(s), fewer than the minimum %d", n, sel.MinSlices)})
	}
	return &g, skipped
}

// SeriesRuleReason says why the series-level rules (modality, body part)
// skip a series, "" when they admit it. The daemon's ready loop uses it
// before a series is queued; Select applies the same rules.
func SeriesRuleReason(modality, bodyPart string, sel Selector) string {
	if !admits(sel.Modalities, modality) {
		return fmt.Sprintf("modality %q not in %v", modality, sel.Modalities)
	}
	if !admits(sel.BodyParts, bodyPart) {
		return fmt.Sprintf("body part %q not in %v", bodyPart, sel.BodyParts)
	}
	return ""
}

// SkippedError is returned by StartLoadSelected when the selection rules
// skip a whole series: not a failure, a decision.
type SkippedError struct {
	SeriesInstanceUID string
	Reason            string
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("series %s not selected: %s", e.SeriesInstanceUID, e.Reason)
}

// instanceSkipReason says why one instance is dropped, "" when it is kept.
func instanceSkipReason(h Header, skipTypes []string) string {
	for _, v := range h.ImageType {
		for _, s := range skipTypes {
			if strings.EqualFold(strings.TrimSpace(v), s) {
				return fmt.Sprintf("ImageType %s has %s", strings.Join(h.ImageType, `\`), strings.ToUpper(s))
			}
		}
	}
	if !h.HasPixelData {
		return "no pixel data"
	}
	if !PixelsSupported(h.TransferSyntaxUID) {
		return fmt.Sprintf("unsupported transfer syntax %s (%s)", h.TransferSyntaxUID, TransferSyntaxName(h.TransferSyntaxUID))
	}
	if h.SamplesPerPixel > 1 {
		return fmt.Sprintf("colour image (%d samples per pixel)", h.SamplesPerPixel)
	}
	return ""
}

// admits reports whether v is in list (case-insensitive); an empty list
// admits everything.
func admits(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, s := range list {
		if strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(v)) {
			return true
		}
	}
	return false
}
