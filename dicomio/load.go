package dicomio

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"tmcad/internal/parallel"
)

// LoadSeries reads one series from its files and returns its frames as
// float32 values in the modality's units (rescale slope/intercept applied,
// per frame for enhanced multi-frame), ordered along the slice normal when
// every frame has a position and the series one orientation, otherwise by
// InstanceNumber (then frame number).
//
// It reads in two passes: first every header (nothing is allocated for
// pixels until all sizes are known and checked against lim), then the pixel
// data, converted straight from the file into one contiguous float32 volume,
// so that peak memory stays close to the size of the result.
//
// Errors (naming the file): files of different series, a duplicate SOP
// instance or slice position, mixed image sizes, orientations, pixel spacing,
// frames of reference or photometric interpretations, colour images,
// unsupported transfer syntaxes (*UnsupportedTransferSyntaxError), limits
// exceeded (*LimitError). Warnings (Series.Warnings): missing slices, uneven
// spacing, frames without geometry in a series that has some.
func LoadSeries(paths []string, lim Limits) (*Series, error) {
	if len(paths) == 0 {
		return nil, errors.New("load series: no files")
	}
	lim = lim.withDefaults()
	insts := make([]*instance, 0, len(paths))
	seen := make(map[string]string, len(paths))
	total := 0
	read := make([]*instance, len(paths))
	if err := parallel.For(len(paths), func(i int) error {
		in, err := readInstance(paths[i])
		if in != nil {
			in.layout = nil // pass 2 scans again; do not hold inflated data sets
		}
		read[i] = in
		return err
	}); err != nil {
		return nil, fmt.Errorf("load series: %w", err)
	}
	for i, p := range paths {
		in := read[i]
		read[i] = nil
		if err := checkDecodable(in); err != nil {
			return nil, fmt.Errorf("load series: %w", err)
		}
		if err := lim.checkImage(in.Header); err != nil {
			return nil, fmt.Errorf("load series: %w", err)
		}
		if first := insts; len(first) > 0 && in.SeriesInstanceUID != first[0].SeriesInstanceUID {
			return nil, fmt.Errorf("load series: %s is in series %s, %s in series %s", first[0].Path, first[0].SeriesInstanceUID, p, in.SeriesInstanceUID)
		}
		if other, dup := seen[in.SOPInstanceUID]; dup {
			return nil, fmt.Errorf("load series: duplicate instance %s in %s and %s", in.SOPInstanceUID, other, p)
		}
		seen[in.SOPInstanceUID] = p
		total += in.Frames()
		if total > lim.MaxFrames {
			return nil, fmt.Errorf("load series: %w", &LimitError{p, "frames", int64(total), int64(lim.MaxFrames)})
		}
		insts = append(insts, in)
	}
	first := insts[0]
	for _, in := range insts[1:] {
		if in.Rows != first.Rows || in.Columns != first.Columns {
			return nil, fmt.Errorf("load series: mixed image sizes: %d×%d in %s, %d×%d in %s", first.Rows, first.Columns, first.Path, in.Rows, in.Columns, in.Path)
		}
		if (in.PhotometricInterpretation == "MONOCHROME1") != (first.PhotometricInterpretation == "MONOCHROME1") {
			return nil, fmt.Errorf("load series: mixed photometric interpretation: %s in %s, %s in %s", first.PhotometricInterpretation, first.Path, in.PhotometricInterpretation, in.Path)
		}
	}
	size := int64(first.Rows) * int64(first.Columns) * int64(total) * 4
	if size > lim.MaxBytes {
		return nil, fmt.Errorf("load series: %w", &LimitError{first.Path, "bytes", size, lim.MaxBytes})
	}

	refs := make([]frameRef, 0, total)
	geometric := 0
	for _, in := range insts {
		for k, g := range in.frames {
			refs = append(refs, frameRef{in: in, index: k, geom: g})
			if g.hasPos && g.hasOrient {
				geometric++
			}
		}
	}
	s := &Series{
		PatientStudy:      first.patient,
		SeriesInstanceUID: first.SeriesInstanceUID,
		SeriesNumber:      first.SeriesNumber,
		Modality:          first.Modality,
		BodyPartExamined:  first.BodyPartExamined,
		Photometric:       first.PhotometricInterpretation,
		Monochrome1:       first.PhotometricInterpretation == "MONOCHROME1",
		Rows:              first.Rows,
		Columns:           first.Columns,
		TransferSyntaxUID: first.TransferSyntaxUID,
	}
	switch {
	case geometric == len(refs):
		spacing, warns, err := orderGeometric(refs)
		if err != nil {
			return nil, fmt.Errorf("load series %s: %w", first.SeriesInstanceUID, err)
		}
		s.HasGeometry = true
		s.SpacingBetweenSlices = spacing
		s.Warnings = append(s.Warnings, warns...)
	default:
		if geometric > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d frames lack ImagePositionPatient/ImageOrientationPatient; ordered by InstanceNumber", len(refs)-geometric, len(refs)))
		}
		orderByNumber(refs)
	}
	g0 := refs[0].geom
	s.Orientation = g0.orient
	s.PixelSpacing = g0.spacing
	s.SliceThickness = g0.thickness
	s.FrameOfReferenceUID = refs[0].in.FrameOfReferenceUID
	if !s.HasGeometry && first.SpacingBetweenSlices > 0 {
		s.SpacingBetweenSlices = first.SpacingBetweenSlices
	}

	// Pass 2: pixels, straight into their ordered slots.
	npix := first.Rows * first.Columns
	s.voxels = make([]float32, npix*total)
	s.Frames = make([]Frame, total)
	slots := make(map[*instance][][]float32, len(insts))
	for i, r := range refs {
		px := s.voxels[i*npix : (i+1)*npix : (i+1)*npix]
		s.Frames[i] = Frame{
			Pixels:         px,
			SOPInstanceUID: r.in.SOPInstanceUID,
			SOPClassUID:    r.in.SOPClassUID,
			FrameNumber:    r.index + 1,
			Position:       r.geom.pos,
			InstanceNumber: r.in.InstanceNumber,
		}
		d := slots[r.in]
		if d == nil {
			d = make([][]float32, r.in.Frames())
			slots[r.in] = d
		}
		d[r.index] = px
	}
	var padded atomic.Int64
	scratches := sync.Pool{New: func() any { return &scratch{} }}
	if err := parallel.For(len(insts), func(i int) error {
		in := insts[i]
		sc := scratches.Get().(*scratch)
		defer scratches.Put(sc)
		n, err := decodeInstance(in, slots[in], sc)
		padded.Add(int64(n))
		in.layout = nil // release inflated data sets early
		return err
	}); err != nil {
		return nil, fmt.Errorf("load series: %w", err)
	}
	s.PaddedPixels += padded.Load()
	if s.PaddedPixels > 0 {
		fillPadding(s.voxels)
	}
	return s, nil
}

// checkDecodable rejects, from the header alone, files whose pixels
// LoadSeries cannot turn into greyscale float32 frames.
func checkDecodable(in *instance) error {
	if !in.HasPixelData {
		return fmt.Errorf("%s: no pixel data (SOP class %s)", in.Path, in.SOPClassUID)
	}
	if err := CheckTransferSyntax(in.Path, in.TransferSyntaxUID); err != nil {
		return err
	}
	if in.SamplesPerPixel != 1 {
		return fmt.Errorf("%s: %d samples per pixel (%s): only greyscale images are supported", in.Path, in.SamplesPerPixel, in.PhotometricInterpretation)
	}
	switch in.PhotometricInterpretation {
	case "MONOCHROME1", "MONOCHROME2", "":
	default:
		return fmt.Errorf("%s: photometric interpretation %s is not supported (MONOCHROME1 or MONOCHROME2)", in.Path, in.PhotometricInterpretation)
	}
	if in.Rows < 1 || in.Columns < 1 {
		return fmt.Errorf("%s: image size %d×%d", in.Path, in.Rows, in.Columns)
	}
	return nil
}

// fillPadding replaces padding pixels (NaN) by the minimum of the real
// values of the volume (0 when every pixel is padding).
func fillPadding(v []float32) {
	lo := float32(math.Inf(1))
	for _, x := range v {
		if x < lo { // false for NaN
			lo = x
		}
	}
	if math.IsInf(float64(lo), 1) {
		lo = 0
	}
	for i, x := range v {
		if x != x {
			v[i] = lo
		}
	}
}
