package dicomio

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// decodeJPEGBaseline decodes an 8-bit greyscale JPEG baseline or extended
// frame with Go's image/jpeg.
func decodeJPEGBaseline(data []byte, fs frameSpec, raw []uint32) (bool, error) {
	// Check the JPEG's own size before decoding: the decoder allocates
	// what the frame header declares.
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return false, fmt.Errorf("JPEG header: %w", err)
	}
	if cfg.Width != fs.cols || cfg.Height != fs.rows {
		return false, fmt.Errorf("JPEG is %d×%d, header says %d×%d", cfg.Width, cfg.Height, fs.cols, fs.rows)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return false, fmt.Errorf("JPEG decode: %w (Go decodes 8-bit baseline/extended JPEG only; convert 12-bit JPEG with dcmdjpeg first)", err)
	}
	gray, ok := img.(*image.Gray)
	if !ok {
		return false, fmt.Errorf("JPEG holds a colour image (%T); only greyscale is supported", img)
	}
	if b := gray.Bounds(); b.Dx() != fs.cols || b.Dy() != fs.rows {
		return false, fmt.Errorf("JPEG is %d×%d, header says %d×%d", b.Dx(), b.Dy(), fs.cols, fs.rows)
	}
	for y := 0; y < fs.rows; y++ {
		row := gray.Pix[y*gray.Stride : y*gray.Stride+fs.cols]
		for x, v := range row {
			raw[y*fs.cols+x] = uint32(v)
		}
	}
	return false, nil
}
