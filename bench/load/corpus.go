package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// template is one phantom study written by tmca.dicom_writer: the source
// every derived series of its kind is patched from.
type template struct {
	Kind      string // "CR" or "CT"
	Dir       string
	StudyUID  string
	SeriesUID string
	FoRUID    string
	Accession string
	Report    string   // path of the report file
	Files     []string // paths, in the order of SOPUIDs
	SOPUIDs   []string
}

// casesFile is the part of dicom_writer's cases.json the harness reads.
type casesFile struct {
	Series []struct {
		StudyUID  string   `json:"study_instance_uid"`
		SeriesUID string   `json:"series_instance_uid"`
		FoRUID    *string  `json:"frame_of_reference_uid"`
		Accession string   `json:"accession"`
		Modality  string   `json:"modality"`
		SOPUIDs   []string `json:"sop_instance_uids"`
		Files     []string `json:"files"`
	} `json:"series"`
}

// templateFor returns the template of a kind, writing it into the cache
// with tmca.dicom_writer (run from the repository root) when missing.
func templateFor(cache, repo, python, kind string, crSize, ctSlices, ctSize int) (*template, error) {
	var name string
	args := []string{"-m", "tmca.dicom_writer", "--seed", "4800"}
	switch kind {
	case "CR":
		name = "tpl-cr"
		args = append(args, "--cr", "1", "--ct", "0")
		if crSize > 0 {
			name += fmt.Sprintf("-%d", crSize)
			args = append(args, "--size", fmt.Sprint(crSize))
		}
	case "CT":
		name = fmt.Sprintf("tpl-ct-%dx%d", ctSlices, ctSize)
		args = append(args, "--cr", "0", "--ct", "1", "--ct-slices", fmt.Sprint(ctSlices), "--ct-size", fmt.Sprint(ctSize))
	default:
		return nil, fmt.Errorf("template kind %q: must be CR or CT", kind)
	}
	dir := filepath.Join(cache, name)
	casesPath := filepath.Join(dir, "cases.json")
	if _, err := os.Stat(casesPath); err != nil {
		tmp := dir + ".tmp"
		_ = os.RemoveAll(tmp)
		cmd := exec.Command(python, append(args, "--out", tmp)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("writing the %s template with tmca.dicom_writer: %w\n%s", kind, err, out)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, fmt.Errorf("template %s: %w", kind, err)
		}
	}
	raw, err := os.ReadFile(casesPath)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", kind, err)
	}
	var cf casesFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("template %s: %s: %w", kind, casesPath, err)
	}
	if len(cf.Series) != 1 || cf.Series[0].Modality != kind {
		return nil, fmt.Errorf("template %s: %s holds %d series, want one %s series", kind, casesPath, len(cf.Series), kind)
	}
	s := cf.Series[0]
	t := &template{Kind: kind, Dir: dir, StudyUID: s.StudyUID, SeriesUID: s.SeriesUID, Accession: s.Accession, SOPUIDs: s.SOPUIDs,
		Report: filepath.Join(dir, "reports", s.Accession+".txt")}
	if s.FoRUID != nil {
		t.FoRUID = *s.FoRUID
	}
	for _, f := range s.Files {
		t.Files = append(t.Files, filepath.Join(dir, f))
	}
	if len(t.Files) != len(t.SOPUIDs) || len(t.Files) == 0 {
		return nil, fmt.Errorf("template %s: %d files for %d SOP Instance UIDs", kind, len(t.Files), len(t.SOPUIDs))
	}
	if len(t.Accession) < 8 {
		return nil, fmt.Errorf("template %s: accession %q is too short to number derived series", kind, t.Accession)
	}
	return t, nil
}

// derived is one series made from a template: its UIDs, files and report.
type derived struct {
	Kind      string   `json:"kind"`
	Index     int      `json:"index"` // among the series of its kind
	StudyUID  string   `json:"study_uid"`
	SeriesUID string   `json:"series_uid"`
	Accession string   `json:"accession"`
	Dir       string   `json:"-"`
	Files     []string `json:"-"`
	Report    string   `json:"-"`
	Bytes     int64    `json:"bytes"`
}

// uidPrefixLen is the length of the part of a derived UID that numbers it;
// the rest is the template UID's own tail, so that lengths match.
const uidPrefixLen = len("2.25.1") + 7 + 1 + 5

// newUID returns a UID of the same length as old, unique per (kind digit,
// series index k, UID number n): "2.25.1" + k + kind + n + old's tail. Being
// the same length, it can replace old in a file in place. 2.25 UIDs of the
// generator are decimal integers below 2^128; a leading 1 keeps the new
// ones there too.
func newUID(old string, kind byte, k, n int) (string, error) {
	if len(old) < uidPrefixLen+1 || !strings.HasPrefix(old, "2.25.") {
		return "", fmt.Errorf("UID %q: a 2.25 UID of at least %d characters is needed", old, uidPrefixLen+1)
	}
	u := fmt.Sprintf("2.25.1%07d%c%05d", k, kind, n) + old[uidPrefixLen:]
	if len(u) != len(old) {
		return "", fmt.Errorf("UID %q: derived UID %q has another length", old, u)
	}
	return u, nil
}

// derive makes series k of the template's kind under cache (once: a
// finished series has a .done marker) and returns it. Every file is the
// template's with the Study, Series, Frame of Reference and SOP Instance
// UIDs and the AccessionNumber replaced, byte for byte, in the header (the
// part before Pixel Data); the report is the template's under the new
// accession.
func derive(cache string, t *template, k int) (*derived, error) {
	kd := byte('0')
	if t.Kind == "CT" {
		kd = '1'
	}
	dir := filepath.Join(cache, "series", filepath.Base(t.Dir), fmt.Sprintf("%07d", k))
	acc := fmt.Sprintf("L%c%0*d", kd, len(t.Accession)-2, k)
	d := &derived{Kind: t.Kind, Index: k, Dir: dir, Accession: acc, Report: filepath.Join(dir, acc+".txt")}
	repl := []string{t.Accession, acc}
	var err error
	if d.StudyUID, err = newUID(t.StudyUID, kd, k, 0); err != nil {
		return nil, err
	}
	if d.SeriesUID, err = newUID(t.SeriesUID, kd, k, 1); err != nil {
		return nil, err
	}
	repl = append(repl, t.StudyUID, d.StudyUID, t.SeriesUID, d.SeriesUID)
	if t.FoRUID != "" {
		f, err := newUID(t.FoRUID, kd, k, 2)
		if err != nil {
			return nil, err
		}
		repl = append(repl, t.FoRUID, f)
	}
	for i, src := range t.Files {
		d.Files = append(d.Files, filepath.Join(dir, fmt.Sprintf("%05d.dcm", i+1)))
		if fi, err := os.Stat(src); err == nil {
			d.Bytes += fi.Size()
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return d, nil
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("derived series: %w", err)
	}
	for i, src := range t.Files {
		sop, err := newUID(t.SOPUIDs[i], kd, k, 10+i)
		if err != nil {
			return nil, err
		}
		if err := patchFile(src, d.Files[i], append(repl, t.SOPUIDs[i], sop)); err != nil {
			return nil, err
		}
	}
	rep, err := os.ReadFile(t.Report)
	if err != nil {
		return nil, fmt.Errorf("template report: %w", err)
	}
	if err := os.WriteFile(d.Report, rep, 0o644); err != nil {
		return nil, fmt.Errorf("derived report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".done"), nil, 0o644); err != nil {
		return nil, fmt.Errorf("derived series: %w", err)
	}
	return d, nil
}

// pixelDataTag is (7FE0,0010) in explicit VR little endian, as the
// generator writes it.
var pixelDataTag = []byte{0xE0, 0x7F, 0x10, 0x00}

// patchFile copies src to dst with each old string of repl (pairs old,
// new of equal length) replaced by its new one in the header, the bytes
// before Pixel Data.
func patchFile(src, dst string, repl []string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("patching: %w", err)
	}
	end := bytes.Index(b, pixelDataTag)
	if end < 0 {
		return fmt.Errorf("patching %s: no Pixel Data element", src)
	}
	head := b[:end]
	for i := 0; i+1 < len(repl); i += 2 {
		old, nw := []byte(repl[i]), []byte(repl[i+1])
		if len(old) != len(nw) {
			return fmt.Errorf("patching %s: %q and %q differ in length", src, old, nw)
		}
		if !bytes.Contains(head, old) {
			return fmt.Errorf("patching %s: %q is not in the header", src, old)
		}
		for j := bytes.Index(head, old); j >= 0; {
			copy(head[j:], nw)
			n := bytes.Index(head[j+len(old):], old)
			if n < 0 {
				break
			}
			j += len(old) + n
		}
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("patching: %w", err)
	}
	return nil
}

// corpus is the series of one run, in arrival order.
type corpus struct {
	Series []*derived
}

// buildCorpus makes n series: CT where the running count of CT series
// falls behind ctFraction of those so far (an even interleaving), CR
// otherwise.
func buildCorpus(cache, repo, python string, n int, ctFraction float64, crSize, ctSlices, ctSize int) (*corpus, error) {
	if ctFraction < 0 || ctFraction > 1 {
		return nil, errors.New("-ct-fraction must be within 0..1")
	}
	var tpl = map[string]*template{}
	c := &corpus{}
	count := map[string]int{}
	for i := 0; i < n; i++ {
		kind := "CR"
		if float64(count["CT"]+1) <= ctFraction*float64(i+1)+1e-9 {
			kind = "CT"
		}
		t := tpl[kind]
		if t == nil {
			var err error
			if t, err = templateFor(cache, repo, python, kind, crSize, ctSlices, ctSize); err != nil {
				return nil, err
			}
			tpl[kind] = t
		}
		d, err := derive(cache, t, count[kind])
		if err != nil {
			return nil, err
		}
		count[kind]++
		c.Series = append(c.Series, d)
	}
	return c, nil
}
