package writer

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"

	"tmcad/dicomio"
)

// segmentColors outline segments 1, 2, 3, ... (cycled).
var segmentColors = []color.RGBA{
	{255, 64, 64, 255}, {64, 200, 255, 255}, {255, 210, 0, 255},
	{80, 255, 80, 255}, {255, 64, 255, 255}, {255, 140, 0, 255},
}

// RenderPreview draws the source frame with the most segmented pixels (the
// middle frame when the SEG is empty), greyscale windowed to its 1st–99th
// percentile, with every segment on it outlined in its own colour.
func RenderPreview(src *dicomio.Series, seg *DecodedSEG) (*image.RGBA, error) {
	if src == nil || seg == nil || len(src.Frames) == 0 {
		return nil, fmt.Errorf("writer: preview: missing source series or SEG")
	}
	if seg.Rows != src.Rows || seg.Columns != src.Columns {
		return nil, fmt.Errorf("writer: preview of SEG %s: matrix %dx%d differs from the source's %dx%d",
			seg.SOPInstanceUID, seg.Rows, seg.Columns, src.Rows, src.Columns)
	}
	type key struct {
		sop   string
		frame int
	}
	index := make(map[key]int, len(src.Frames))
	for i, f := range src.Frames {
		index[key{f.SOPInstanceUID, f.FrameNumber}] = i
		if _, ok := index[key{f.SOPInstanceUID, 0}]; !ok {
			index[key{f.SOPInstanceUID, 0}] = i
		}
	}
	on := func(v byte) bool {
		if seg.Type == Fractional {
			return v >= 128
		}
		return v != 0
	}
	count := make([]int, len(src.Frames))
	bySource := make(map[int][]int) // source frame -> SEG frames
	for i, fr := range seg.Frames {
		si, ok := index[key{fr.SourceSOP, fr.SourceFrame}]
		if !ok {
			return nil, fmt.Errorf("writer: preview of SEG %s: frame %d references instance %s (frame %d), not in the source series",
				seg.SOPInstanceUID, i+1, fr.SourceSOP, fr.SourceFrame)
		}
		bySource[si] = append(bySource[si], i)
		for _, v := range fr.Pixels {
			if on(v) {
				count[si]++
			}
		}
	}
	best := len(src.Frames) / 2
	for i, c := range count {
		if c > count[best] {
			best = i
		}
	}
	f := src.Frames[best]
	rows, cols := src.Rows, src.Columns
	if len(f.Pixels) != rows*cols {
		return nil, fmt.Errorf("writer: preview: source frame %d of series %s has no decoded pixels", best, src.SeriesInstanceUID)
	}
	grey := windowFrame(f.Pixels, src.Monochrome1)
	img := image.NewRGBA(image.Rect(0, 0, cols, rows))
	for i, b := range grey {
		img.Pix[i*4], img.Pix[i*4+1], img.Pix[i*4+2], img.Pix[i*4+3] = b, b, b, 255
	}
	for _, sf := range bySource[best] {
		fr := seg.Frames[sf]
		c := segmentColors[(max(fr.Segment, 1)-1)%len(segmentColors)]
		outline(fr.Pixels, rows, cols, on, func(i int) { img.SetRGBA(i%cols, i/cols, c) })
	}
	return img, nil
}

// windowFrame renders one frame of decoded values as 8-bit greyscale, the
// way every picture tmcad makes shows its source: windowed to the frame's
// 1st–99th percentile, inverted for MONOCHROME1 so that it looks as its
// modality displays it.
func windowFrame(px []float32, monochrome1 bool) []uint8 {
	lo, hi := percentiles(px)
	out := make([]uint8, len(px))
	for i, v := range px {
		g := float32(0)
		if hi > lo {
			g = (v - lo) / (hi - lo)
		}
		g = max(0, min(1, g))
		if monochrome1 {
			g = 1 - g
		}
		out[i] = uint8(g*255 + 0.5)
	}
	return out
}

// outline calls mark with the index of every pixel of a rows × cols mask
// that is on its boundary: on itself, and on the image's edge or beside
// (4-neighbourhood) a pixel that is off.
func outline(mask []byte, rows, cols int, on func(byte) bool, mark func(i int)) {
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			i := y*cols + x
			if !on(mask[i]) {
				continue
			}
			if x == 0 || y == 0 || x == cols-1 || y == rows-1 ||
				!on(mask[i-1]) || !on(mask[i+1]) || !on(mask[i-cols]) || !on(mask[i+cols]) {
				mark(i)
			}
		}
	}
}

// percentiles returns the 1st and 99th percentile of a frame.
func percentiles(p []float32) (float32, float32) {
	s := append([]float32(nil), p...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/100], s[(len(s)-1)*99/100]
}

// PreviewPNG renders the preview of an encoded SEG (its Part 10 bytes) on its
// source series and returns it as PNG.
func PreviewPNG(segData []byte, src *dicomio.Series) ([]byte, error) {
	seg, err := ReadSEG(segData)
	if err != nil {
		return nil, err
	}
	img, err := RenderPreview(src, seg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("writer: preview of SEG %s: encoding PNG: %w", seg.SOPInstanceUID, err)
	}
	return buf.Bytes(), nil
}

// WritePreviewFile reads the SEG at segPath, renders it on src and writes the
// PNG to outPath (through a temporary file and a rename). It is what
// `tmcad preview SEG.dcm --source DIR -o out.png` calls once the source
// series is loaded.
func WritePreviewFile(segPath string, src *dicomio.Series, outPath string) error {
	data, err := os.ReadFile(segPath)
	if err != nil {
		return fmt.Errorf("writer: preview: %w", err)
	}
	pngData, err := PreviewPNG(data, src)
	if err != nil {
		return fmt.Errorf("writer: preview of %s: %w", filepath.Base(segPath), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), ".preview-*.png")
	if err != nil {
		return fmt.Errorf("writer: preview: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pngData); err != nil {
		tmp.Close()
		return fmt.Errorf("writer: preview: writing %s: %w", outPath, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writer: preview: writing %s: %w", outPath, err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return fmt.Errorf("writer: preview: %w", err)
	}
	return nil
}
