package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"tmcad/dicomio"
)

// losslessEncoding is one lossless transfer syntax tmcad decodes and the
// command line of a real encoder that writes it (input and output paths
// are appended).
type losslessEncoding struct {
	name    string
	ts      string
	encoder []string
}

// losslessEncodings are the encapsulated lossless syntaxes, written by the
// tools `make deps` installs (dcmtk, libgdcm-tools, and OpenJPH's
// ojph_compress through examples/compressed/htj2k.py).
var losslessEncodings = []losslessEncoding{
	{"RLE", dicomio.RLELossless, []string{"dcmcrle"}},
	{"JPEG Lossless SV1", dicomio.JPEGLosslessSV1, []string{"dcmcjpeg", "+e1"}},
	{"JPEG-LS lossless", dicomio.JPEGLSLossless, []string{"dcmcjpls", "+el"}},
	{"JPEG 2000 lossless", dicomio.JPEG2000Lossless, []string{"gdcmconv", "--j2k"}},
	{"HTJ2K lossless", dicomio.HTJ2KLossless, []string{repoRoot + "/examples/compressed/htj2k.py"}},
}

// encodeTree writes every DICOM file under src, re-encoded by encoder, to
// the same relative path under dst (on as many workers as CPUs), and
// checks that each output holds the transfer syntax ts.
func encodeTree(t *testing.T, src, dst string, encoder []string, ts string) {
	t.Helper()
	var files []string
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".dcm") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(files))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, p := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rel, _ := filepath.Rel(src, p)
			out := filepath.Join(dst, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				errs[i] = err
				return
			}
			args := append(append([]string{}, encoder[1:]...), p, out)
			if b, err := exec.Command(encoder[0], args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s %s: %v\n%s", encoder[0], rel, err, b)
				return
			}
			h, err := dicomio.ReadHeader(out)
			if err != nil {
				errs[i] = err
				return
			}
			if h.TransferSyntaxUID != ts {
				errs[i] = fmt.Errorf("%s wrote %s in %s, want %s", encoder[0], rel, h.TransferSyntaxUID, ts)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no DICOM files under %s", src)
	}
}

// processMasks runs `tmcad process` with the shipped model on the studies
// under input and the reports, checks that all its series were segmented,
// and returns the PNG mask of every source SOP instance, by SOP Instance
// UID.
func processMasks(t *testing.T, input, reports, work string, series int) map[string][]byte {
	t.Helper()
	masks := filepath.Join(work, "masks")
	code, out, errs := runCLI(t, "process", "--input", input, "--reports", reports,
		"--archive", filepath.Join(work, "archive"), "--masks-png", masks, "--model", shippedModel, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("tmcad process %s: exit %d\n%s\n%s", input, code, out, errs)
	}
	if !strings.Contains(out, fmt.Sprintf("%d series segmented, 0 without a target in their report, 0 failed, 0 skipped", series)) {
		t.Fatalf("tmcad process %s: summary:\n%s", input, out)
	}
	sum := readSummary(t, masks)
	got := map[string][]byte{}
	for _, s := range sum {
		for _, m := range s.Masks {
			png, err := os.ReadFile(filepath.Join(masks, m.File))
			if err != nil {
				t.Fatal(err)
			}
			got[m.SOPInstanceUID] = png
		}
	}
	return got
}

// TestProcessCompressedExamplesMatchNative re-encodes the example studies
// (4 CR, 2 CT series of 20 slices) in each lossless encapsulated syntax
// with a real encoder and checks that `tmcad process` with the shipped
// model gives, for every SOP instance, the same PNG mask byte for byte as
// on the native originals: lossless decoding hands the model the very
// values the native files hold.
func TestProcessCompressedExamplesMatchNative(t *testing.T) {
	for _, e := range losslessEncodings {
		if _, err := exec.LookPath(e.encoder[0]); err != nil {
			t.Fatalf("%s (for %s) is not installed: run make deps", e.encoder[0], e.name)
		}
	}
	dir := t.TempDir()
	native := processMasks(t, repoRoot+"/examples/dicom", repoRoot+"/examples/reports", filepath.Join(dir, "native"), 6)
	if len(native) != 4+2*20 {
		t.Fatalf("%d masks from the native examples, want 44", len(native))
	}
	for _, e := range losslessEncodings {
		t.Run(e.name, func(t *testing.T) {
			work := filepath.Join(dir, strings.NewReplacer(" ", "-").Replace(e.name))
			encodeTree(t, repoRoot+"/examples/dicom", filepath.Join(work, "dicom"), e.encoder, e.ts)
			got := processMasks(t, filepath.Join(work, "dicom"), repoRoot+"/examples/reports", work, 6)
			if len(got) != len(native) {
				t.Errorf("%d masks, want %d as from the native examples", len(got), len(native))
			}
			sameMasks(t, got, native)
		})
	}

	// The compressed demo folder (make demo) is what its script writes, and
	// gives the native masks of its studies.
	t.Run("examples/compressed", func(t *testing.T) {
		regen := filepath.Join(dir, "compressed")
		if out, err := exec.Command(repoRoot+"/examples/compressed/gen.sh", regen).CombinedOutput(); err != nil {
			t.Fatalf("examples/compressed/gen.sh: %v\n%s", err, out)
		}
		for _, sub := range []string{"dicom", "reports"} {
			sameTree(t, filepath.Join(regen, sub), repoRoot+"/examples/compressed/"+sub)
		}
		got := processMasks(t, repoRoot+"/examples/compressed/dicom", repoRoot+"/examples/compressed/reports", filepath.Join(dir, "compressed-run"), 6)
		if len(got) != len(native) {
			t.Errorf("%d masks from examples/compressed, want %d as from the native examples", len(got), len(native))
		}
		sameMasks(t, got, native)
	})
}

// sameMasks checks that every mask in got is byte for byte the native
// run's mask of the same SOP instance (and that native has each of them).
func sameMasks(t *testing.T, got, native map[string][]byte) {
	t.Helper()
	sops := make([]string, 0, len(got))
	for sop := range got {
		sops = append(sops, sop)
	}
	sort.Strings(sops)
	differ := 0
	for _, sop := range sops {
		want, ok := native[sop]
		switch {
		case !ok:
			t.Errorf("SOP instance %s has a mask but none in the native run", sop)
		case !bytes.Equal(got[sop], want):
			differ++
			if differ <= 3 {
				t.Errorf("the mask of SOP instance %s differs from the native run's", sop)
			}
		}
	}
	if differ > 3 {
		t.Errorf("%d masks in all differ from the native run's", differ)
	}
}

// sameTree checks that the folder got holds the same files, byte for
// byte, as want.
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			m[rel] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	g, w := files(got), files(want)
	for rel, b := range w {
		if gb, ok := g[rel]; !ok || !bytes.Equal(gb, b) {
			t.Errorf("%s: not what examples/compressed/gen.sh writes (re-run it)", filepath.Join(want, rel))
		}
	}
	for rel := range g {
		if _, ok := w[rel]; !ok {
			t.Errorf("%s: missing (re-run examples/compressed/gen.sh)", filepath.Join(want, rel))
		}
	}
}
