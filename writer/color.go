package writer

import "math"

// RGB is a display colour in sRGB, 0..255 per channel.
type RGB [3]uint8

// defaultPalette colours segments that have no colour of their own, by
// segment number (1 takes the first), repeating after the last: saturated
// hues that stand out on a grey image and from each other.
var defaultPalette = []RGB{
	{230, 80, 60},  // red
	{60, 140, 230}, // blue
	{80, 190, 90},  // green
	{240, 200, 40}, // yellow
	{170, 90, 220}, // purple
	{40, 200, 200}, // cyan
	{240, 130, 30}, // orange
	{230, 90, 170}, // pink
}

// DefaultColor is the colour a segment numbered number (from 1) is shown in
// when its Segment.Color is nil.
func DefaultColor(number int) RGB {
	n := len(defaultPalette)
	return defaultPalette[((number-1)%n+n)%n]
}

// CIELab returns the colour as DICOM writes it in Recommended Display
// CIELab Value (0062,000D): CIE L*a*b* relative to the D50 white of the ICC
// profile connection space (PS3.3 C.10.7.1.1), scaled so that L* 0..100 and
// a*, b* -128..127 each span 0..65535.
//
// The conversion is the standard one: the sRGB transfer function is undone
// (IEC 61966-2-1), linear sRGB goes to CIE XYZ with the matrix of the sRGB
// primaries and D65 white, XYZ is adapted from D65 to D50 with the linear
// Bradford transform, and L*a*b* is computed against D50.
func (c RGB) CIELab() [3]uint16 {
	var lin [3]float64
	for i, v := range c {
		x := float64(v) / 255
		if x <= 0.04045 {
			lin[i] = x / 12.92
		} else {
			lin[i] = math.Pow((x+0.055)/1.055, 2.4)
		}
	}
	xyz := srgbToXYZD50.apply(lin)
	white := xyzOf(whiteD50)
	var f [3]float64
	for i := range f {
		t := xyz[i] / white[i]
		if t > 216.0/24389.0 {
			f[i] = math.Cbrt(t)
		} else {
			f[i] = (24389.0/27.0*t + 16) / 116
		}
	}
	l, a, b := 116*f[1]-16, 500*(f[0]-f[1]), 200*(f[1]-f[2])
	scale := func(v, lo, span float64) uint16 {
		return uint16(math.Round(math.Max(0, math.Min(65535, (v-lo)*65535/span))))
	}
	return [3]uint16{scale(l, 0, 100), scale(a, -128, 255), scale(b, -128, 255)}
}

// CIE xy chromaticities of the sRGB primaries and of the D65 and D50
// whites.
var (
	srgbPrimaries = [3][2]float64{{0.64, 0.33}, {0.30, 0.60}, {0.15, 0.06}}
	whiteD65      = [2]float64{0.3127, 0.3290}
	whiteD50      = [2]float64{0.3457, 0.3585}
)

// bradford is the cone response matrix of the linear Bradford chromatic
// adaptation transform.
var bradford = mat3{
	{0.8951, 0.2664, -0.1614},
	{-0.7502, 1.7135, 0.0367},
	{0.0389, -0.0685, 1.0296},
}

// srgbToXYZD50 maps linear sRGB to CIE XYZ adapted to D50.
var srgbToXYZD50 = func() mat3 {
	// sRGB to XYZ (D65): the primaries' XYZ as columns, each scaled so
	// that R = G = B = 1 gives the white.
	var p mat3
	for j, xy := range srgbPrimaries {
		v := xyzOf(xy)
		for i := range v {
			p[i][j] = v[i]
		}
	}
	s := p.inverse().apply(xyzOf(whiteD65))
	var toXYZ mat3
	for i := range toXYZ {
		for j := range toXYZ[i] {
			toXYZ[i][j] = p[i][j] * s[j]
		}
	}
	// Bradford: D65 to D50 in cone space.
	src, dst := bradford.apply(xyzOf(whiteD65)), bradford.apply(xyzOf(whiteD50))
	var gain mat3
	for i := range gain {
		gain[i][i] = dst[i] / src[i]
	}
	return bradford.inverse().mul(gain).mul(bradford).mul(toXYZ)
}()

// xyzOf is the XYZ (Y = 1) of a chromaticity.
func xyzOf(xy [2]float64) [3]float64 {
	x, y := xy[0], xy[1]
	return [3]float64{x / y, 1, (1 - x - y) / y}
}

// mat3 is a 3×3 matrix, rows first.
type mat3 [3][3]float64

func (m mat3) apply(v [3]float64) [3]float64 {
	var out [3]float64
	for i := range m {
		out[i] = m[i][0]*v[0] + m[i][1]*v[1] + m[i][2]*v[2]
	}
	return out
}

func (m mat3) mul(n mat3) mat3 {
	var out mat3
	for i := range m {
		for j := range n[0] {
			out[i][j] = m[i][0]*n[0][j] + m[i][1]*n[1][j] + m[i][2]*n[2][j]
		}
	}
	return out
}

// inverse by the adjugate; the matrices here are well conditioned.
func (m mat3) inverse() mat3 {
	det := m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
	var out mat3
	for i := range 3 {
		for j := range 3 {
			// Cofactor of (j, i), for the transpose.
			r0, r1 := (j+1)%3, (j+2)%3
			c0, c1 := (i+1)%3, (i+2)%3
			out[i][j] = (m[r0][c0]*m[r1][c1] - m[r0][c1]*m[r1][c0]) / det
		}
	}
	return out
}
