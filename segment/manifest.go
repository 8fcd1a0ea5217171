package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ManifestFile is the name of the manifest inside a model folder.
const ManifestFile = "manifest.json"

// Manifest is the model's contract with the Go side (docs/CONTRACTS.md): the
// only place tmcad learns about a model.
type Manifest struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Description  string            `json:"description"`
	ONNX         string            `json:"onnx"`
	Inputs       []TensorSpec      `json:"inputs"`
	Outputs      []TensorSpec      `json:"outputs"`
	Image        ImageSpec         `json:"image"`
	Windows      map[string]Window `json:"windows"`
	Normalize    Normalization     `json:"normalize"`
	Tokenizer    TokenizerSpec     `json:"tokenizer"`
	Threshold    float64           `json:"threshold"`
	TextRequired bool              `json:"text_required"`
	Modalities   []string          `json:"modalities"`
	Segments     []SegmentSpec     `json:"segments"`
	Reference    string            `json:"reference"`
	// Guide declares the sentence form the model was trained on; nil for a
	// model that reads the report's sections as they are.
	Guide *GuideSpec `json:"guide,omitempty"`

	dir string
}

// GuideSpec is the form of the guide text a model was trained on: the
// name of a form per modality ("qata-cov19", "mosmeddata", "sections"; the
// key "default" for the rest) and the most target zones a guide text names.
type GuideSpec struct {
	Forms    map[string]string `json:"forms"`
	MaxZones int               `json:"max_zones"`
}

// GuideForm returns the guide-text form for modality: its own, else the
// "default" one, else "sections" (the report's text as it is).
func (m *Manifest) GuideForm(modality string) string {
	if m.Guide == nil {
		return "sections"
	}
	if f, ok := m.Guide.Forms[modality]; ok {
		return f
	}
	if f, ok := m.Guide.Forms["default"]; ok {
		return f
	}
	return "sections"
}

// TensorSpec names one model input or output, its element type and shape;
// -1 marks a dynamic dimension (the batch).
type TensorSpec struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// ImageSpec is the model's input image size.
type ImageSpec struct {
	Height   int    `json:"height"`
	Width    int    `json:"width"`
	Channels int    `json:"channels"`
	Resize   string `json:"resize"`
}

// Window maps modality values to [0, 1]: "fixed" (Center, Width) or
// "minmax" (the frame's own range).
type Window struct {
	Mode   string  `json:"mode"`
	Center float64 `json:"center"`
	Width  float64 `json:"width"`
}

// Normalization is applied after windowing and resizing: (y - Mean) / Std.
type Normalization struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// TokenizerSpec describes the WordPiece tokenizer the model was trained with.
type TokenizerSpec struct {
	Vocab        string `json:"vocab"`
	MaxLength    int    `json:"max_length"`
	LowerCase    bool   `json:"lower_case"`
	StripAccents bool   `json:"strip_accents"`
}

// Code is a coded concept (e.g. SNOMED CT, scheme "SCT").
type Code struct {
	Code    string `json:"code"`
	Scheme  string `json:"scheme"`
	Meaning string `json:"meaning"`
}

// SegmentSpec describes one output segment of the model.
type SegmentSpec struct {
	Number   int    `json:"number"`
	Label    string `json:"label"`
	Category Code   `json:"category"`
	Type     Code   `json:"type"`
	// Site is the optional anatomic location of the finding (SNOMED CT),
	// the Finding Site of the segment in the measurement report.
	Site *Code `json:"site,omitempty"`
	// Color is the optional display colour [R, G, B] in sRGB, 0..255 each;
	// absent, the SEG writer's default colour for the segment number.
	Color []int `json:"color,omitempty"`
}

// RGB returns the segment's display colour, or nil when the manifest gives
// none. The manifest has been validated, so every value fits a byte.
func (s SegmentSpec) RGB() *[3]uint8 {
	if len(s.Color) != 3 {
		return nil
	}
	return &[3]uint8{uint8(s.Color[0]), uint8(s.Color[1]), uint8(s.Color[2])}
}

// LoadManifest reads and validates dir/manifest.json. Errors name the file
// and the key.
func LoadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("model manifest: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	m.dir = dir
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &m, nil
}

// Dir is the model folder the manifest was loaded from.
func (m *Manifest) Dir() string { return m.dir }

// Path resolves a file named in the manifest against the model folder.
func (m *Manifest) Path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(m.dir, rel)
}

// ID is "name@version", the model identity used in job keys and SEGs.
func (m *Manifest) ID() string { return m.Name + "@" + m.Version }

// WindowFor returns the window for a modality, or the default one.
func (m *Manifest) WindowFor(modality string) Window {
	if w, ok := m.Windows[strings.ToUpper(modality)]; ok {
		return w
	}
	return m.Windows["default"]
}

// Input returns the input spec with the given name.
func (m *Manifest) Input(name string) (TensorSpec, bool) {
	for _, t := range m.Inputs {
		if t.Name == name {
			return t, true
		}
	}
	return TensorSpec{}, false
}

// Supports reports whether the model was trained for the modality.
func (m *Manifest) Supports(modality string) bool {
	for _, mod := range m.Modalities {
		if strings.EqualFold(mod, modality) {
			return true
		}
	}
	return false
}

func (m *Manifest) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if m.Name == "" {
		bad("name", "must be set")
	}
	if m.Version == "" {
		bad("version", "must be set")
	}
	if m.ONNX == "" {
		bad("onnx", "must name the ONNX file")
	}
	if m.Image.Height < 8 || m.Image.Width < 8 {
		bad("image", "height and width must be >= 8, got %dx%d", m.Image.Height, m.Image.Width)
	}
	if m.Image.Channels != 1 {
		bad("image.channels", "must be 1, got %d", m.Image.Channels)
	}
	if m.Guide != nil && m.Guide.MaxZones < 0 {
		bad("guide.max_zones", "must be >= 0, got %d", m.Guide.MaxZones)
	}
	if m.Image.Resize != "bilinear" {
		bad("image.resize", "must be \"bilinear\", got %q", m.Image.Resize)
	}
	want := map[string]struct {
		dtype string
		shape []int64
	}{
		"image":          {"float32", []int64{-1, 1, int64(m.Image.Height), int64(m.Image.Width)}},
		"input_ids":      {"int64", []int64{-1, int64(m.Tokenizer.MaxLength)}},
		"attention_mask": {"int64", []int64{-1, int64(m.Tokenizer.MaxLength)}},
	}
	for name, w := range want {
		in, ok := m.Input(name)
		if !ok {
			bad("inputs", "no input named %q", name)
			continue
		}
		if in.DType != w.dtype || !shapeEqual(in.Shape, w.shape) {
			bad("inputs."+name, "must be %s %v, got %s %v", w.dtype, w.shape, in.DType, in.Shape)
		}
	}
	if len(m.Inputs) != 3 {
		bad("inputs", "must list exactly image, input_ids and attention_mask, got %d inputs", len(m.Inputs))
	}
	if len(m.Outputs) != 1 || m.Outputs[0].Name != "prob" || m.Outputs[0].DType != "float32" ||
		!shapeEqual(m.Outputs[0].Shape, []int64{-1, 1, int64(m.Image.Height), int64(m.Image.Width)}) {
		bad("outputs", "must be one float32 output \"prob\" [-1,1,%d,%d], got %+v", m.Image.Height, m.Image.Width, m.Outputs)
	}
	if _, ok := m.Windows["default"]; !ok {
		bad("windows.default", "must be set")
	}
	for mod, w := range m.Windows {
		switch w.Mode {
		case "minmax":
		case "fixed":
			if w.Width <= 0 {
				bad("windows."+mod+".width", "must be > 0, got %v", w.Width)
			}
		default:
			bad("windows."+mod+".mode", "must be \"fixed\" or \"minmax\", got %q", w.Mode)
		}
	}
	if m.Normalize.Std <= 0 {
		bad("normalize.std", "must be > 0, got %v", m.Normalize.Std)
	}
	if m.Tokenizer.Vocab == "" {
		bad("tokenizer.vocab", "must be set")
	}
	if m.Tokenizer.MaxLength < 2 {
		bad("tokenizer.max_length", "must be >= 2, got %d", m.Tokenizer.MaxLength)
	}
	if m.Threshold <= 0 || m.Threshold >= 1 {
		bad("threshold", "must be in (0, 1), got %v", m.Threshold)
	}
	if len(m.Modalities) == 0 {
		bad("modalities", "must list at least one modality")
	}
	if len(m.Segments) == 0 {
		bad("segments", "must describe at least one segment")
	}
	for i, s := range m.Segments {
		key := fmt.Sprintf("segments[%d]", i)
		if s.Number != i+1 {
			bad(key+".number", "must be %d (numbered from 1, consecutive), got %d", i+1, s.Number)
		}
		if s.Label == "" {
			bad(key+".label", "must be set")
		}
		if s.Color != nil {
			if len(s.Color) != 3 {
				bad(key+".color", "must be [R, G, B], got %d values", len(s.Color))
			}
			for _, v := range s.Color {
				if v < 0 || v > 255 {
					bad(key+".color", "values must be 0..255 (sRGB), got %v", s.Color)
					break
				}
			}
		}
		codes := map[string]Code{"category": s.Category, "type": s.Type}
		if s.Site != nil {
			codes["site"] = *s.Site
		}
		for name, c := range codes {
			if c.Code == "" || c.Meaning == "" || c.Scheme == "" {
				bad(key+"."+name, "code, scheme and meaning must be set")
			}
			if c.Scheme == "SRT" {
				bad(key+"."+name+".scheme", "SRT is deprecated, use SCT")
			}
		}
	}
	return errors.Join(errs...)
}

func shapeEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
