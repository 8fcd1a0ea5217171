package dicomio

import (
	"fmt"
	"math"
	"sort"
)

// Tolerances for comparing geometry between frames.
const (
	orientTol    = 1e-3 // direction cosines
	spacingRel   = 1e-3 // pixel spacing, relative
	duplicateTol = 1e-2 // mm along the normal: closer slices are duplicates
	unevenRel    = 0.05 // a gap deviating more than 5% from the median is uneven
)

// frameRef is one frame of the series before decoding.
type frameRef struct {
	in    *instance
	index int // 0-based frame index inside in
	geom  frameGeom
	dist  float64 // position along the slice normal
}

func (r frameRef) describe() string {
	if r.in.Frames() > 1 {
		return fmt.Sprintf("%s frame %d (SOP %s)", r.in.Path, r.index+1, r.in.SOPInstanceUID)
	}
	return fmt.Sprintf("%s (SOP %s)", r.in.Path, r.in.SOPInstanceUID)
}

func cross(a, b Vec3) Vec3 {
	return Vec3{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func dot(a, b Vec3) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// sliceNormal is the unit normal of an ImageOrientationPatient.
func sliceNormal(o [6]float64) Vec3 {
	n := cross(Vec3{o[0], o[1], o[2]}, Vec3{o[3], o[4], o[5]})
	l := math.Sqrt(dot(n, n))
	if l == 0 {
		return n
	}
	return Vec3{n[0] / l, n[1] / l, n[2] / l}
}

func sameOrientation(a, b [6]float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > orientTol {
			return false
		}
	}
	return true
}

func sameSpacing(a, b [2]float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > spacingRel*math.Max(math.Abs(a[i]), math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// orderGeometric sorts frames along the slice normal and checks them:
// mixed orientation, pixel spacing or frame of reference and duplicate
// positions are errors; missing slices and uneven spacing are warnings.
// It returns the median spacing between slices.
func orderGeometric(refs []frameRef) (spacing float64, warnings []string, err error) {
	o := refs[0].geom.orient
	for _, r := range refs[1:] {
		if !sameOrientation(r.geom.orient, o) {
			return 0, nil, fmt.Errorf("mixed orientations: %s has %v, %s has %v (a localizer or reformat in the series? Select drops ImageType LOCALIZER/DERIVED)", refs[0].describe(), o, r.describe(), r.geom.orient)
		}
		if !sameSpacing(r.geom.spacing, refs[0].geom.spacing) {
			return 0, nil, fmt.Errorf("mixed pixel spacing: %s has %v, %s has %v", refs[0].describe(), refs[0].geom.spacing, r.describe(), r.geom.spacing)
		}
		if r.in.FrameOfReferenceUID != refs[0].in.FrameOfReferenceUID {
			return 0, nil, fmt.Errorf("mixed frames of reference: %s has %s, %s has %s", refs[0].describe(), refs[0].in.FrameOfReferenceUID, r.describe(), r.in.FrameOfReferenceUID)
		}
	}
	n := sliceNormal(o)
	for i := range refs {
		refs[i].dist = dot(refs[i].geom.pos, n)
	}
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].dist < refs[j].dist })
	if len(refs) < 2 {
		return 0, nil, nil
	}
	gaps := make([]float64, len(refs)-1)
	for i := range gaps {
		gaps[i] = refs[i+1].dist - refs[i].dist
		if gaps[i] < duplicateTol {
			return 0, nil, fmt.Errorf("duplicate slice position %.3f mm along the normal: %s and %s", refs[i].dist, refs[i].describe(), refs[i+1].describe())
		}
	}
	sorted := append([]float64(nil), gaps...)
	sort.Float64s(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	// The median gap is the series' spacing as long as fewer than half of
	// the gaps are irregular.
	for i, g := range gaps {
		r := g / med
		if math.Abs(r-1) <= unevenRel {
			continue
		}
		k := math.Round(r)
		if k >= 2 && math.Abs(r-k) <= unevenRel*k {
			warnings = append(warnings, fmt.Sprintf("missing %d slice(s): gap of %.3f mm (spacing %.3f mm) between %s and %s", int(k)-1, g, med, refs[i].describe(), refs[i+1].describe()))
		} else {
			warnings = append(warnings, fmt.Sprintf("uneven slice spacing: gap of %.3f mm (spacing %.3f mm) between %s and %s", g, med, refs[i].describe(), refs[i+1].describe()))
		}
	}
	return med, warnings, nil
}

// orderByNumber sorts frames without geometry by InstanceNumber, then frame
// number, keeping the input order otherwise.
func orderByNumber(refs []frameRef) {
	sort.SliceStable(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.in.InstanceNumber != b.in.InstanceNumber {
			return a.in.InstanceNumber < b.in.InstanceNumber
		}
		if a.in == b.in {
			if a.geom.stackIndex != b.geom.stackIndex && a.geom.stackIndex > 0 && b.geom.stackIndex > 0 {
				return a.geom.stackIndex < b.geom.stackIndex
			}
			return a.index < b.index
		}
		return false
	})
}
