package dicomio

import (
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
)

// attrs is a read-only view of one level of a parsed data set (the top
// level, or one sequence item), keyed by tag.
type attrs map[uint32]*dicom.Element

func newAttrs(elems []*dicom.Element) attrs {
	a := make(attrs, len(elems))
	for _, e := range elems {
		if e == nil {
			continue
		}
		a[tagOf(e.Tag.Group, e.Tag.Element)] = e
	}
	return a
}

func (a attrs) has(t uint32) bool { return a[t] != nil }

// strs returns the values of a string element, trimmed of padding.
func (a attrs) strs(t uint32) []string {
	e := a[t]
	if e == nil || e.Value == nil {
		return nil
	}
	v, ok := e.Value.GetValue().([]string)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(v))
	for _, s := range v {
		out = append(out, strings.Trim(s, " \x00"))
	}
	return out
}

// str returns the first value of a string element ("" when absent).
func (a attrs) str(t uint32) string {
	if v := a.strs(t); len(v) > 0 {
		return v[0]
	}
	return ""
}

// nums returns the numeric values of an element stored as decimal or integer
// strings (DS, IS), integers (US, SS, UL, SL) or floats (FL, FD). Values
// that do not parse are dropped; ok is false when the element is absent or
// any value is unparsable.
func (a attrs) nums(t uint32) (out []float64, ok bool) {
	e := a[t]
	if e == nil || e.Value == nil {
		return nil, false
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		for _, s := range v {
			s = strings.TrimSpace(strings.Trim(s, "\x00"))
			if s == "" {
				continue
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, false
			}
			out = append(out, f)
		}
	case []int:
		for _, i := range v {
			out = append(out, float64(i))
		}
	case []float64:
		out = append(out, v...)
	default:
		return nil, false
	}
	return out, len(out) > 0
}

// num returns the first numeric value of an element.
func (a attrs) num(t uint32) (float64, bool) {
	v, ok := a.nums(t)
	if !ok {
		return 0, false
	}
	return v[0], true
}

// int returns the first numeric value as an int (0 when absent).
func (a attrs) int(t uint32) (int, bool) {
	f, ok := a.num(t)
	if !ok || f != f || f > 1<<31 || f < -(1<<31) {
		return 0, false
	}
	return int(f), true
}

// items returns the items of a sequence element.
func (a attrs) items(t uint32) []attrs {
	e := a[t]
	if e == nil || e.Value == nil {
		return nil
	}
	v, ok := e.Value.GetValue().([]*dicom.SequenceItemValue)
	if !ok {
		return nil
	}
	out := make([]attrs, 0, len(v))
	for _, it := range v {
		if it == nil {
			continue
		}
		elems, _ := it.GetValue().([]*dicom.Element)
		out = append(out, newAttrs(elems))
	}
	return out
}

// first returns the first item of a sequence (nil when absent or empty).
func (a attrs) first(t uint32) attrs {
	if it := a.items(t); len(it) > 0 {
		return it[0]
	}
	return nil
}
