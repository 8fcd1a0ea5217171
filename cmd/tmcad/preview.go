package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"tmcad/dicomio"
	"tmcad/writer"
)

func runPreview(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("preview", "SEG.dcm --source DIR -o OUT.png",
		"Renders a SEG over its source series: the most-segmented frame, the mask outlined, as PNG.\n"+
			"DIR is searched recursively for the source series the SEG references.", stderr)
	source := fs.String("source", "", "folder holding the source series (required)")
	out := fs.String("o", "", "output PNG (required)")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 || *source == "" || *out == "" {
		fs.Usage()
		return errUsage
	}
	segPath := fs.Arg(0)
	data, err := os.ReadFile(segPath)
	if err != nil {
		return err
	}
	seg, err := writer.ReadSEG(data)
	if err != nil {
		return fmt.Errorf("%s: %w", segPath, err)
	}
	paths, err := sourcePaths(*source, seg)
	if err != nil {
		return err
	}
	src, err := dicomio.LoadSeries(paths, dicomio.Limits{})
	if err != nil {
		return err
	}
	if err := writer.WritePreviewFile(segPath, src, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", *out)
	return nil
}

// sourcePaths finds, under dir, the instances of the series the SEG's
// frames were derived from.
func sourcePaths(dir string, seg *writer.DecodedSEG) ([]string, error) {
	want := map[string]bool{}
	for _, f := range seg.Frames {
		want[f.SourceSOP] = true
	}
	var headers []dicomio.Header
	series := ""
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h, err := dicomio.ReadHeader(p)
		if err != nil {
			return nil // not DICOM: not the source
		}
		headers = append(headers, h)
		if want[h.SOPInstanceUID] {
			series = h.SeriesInstanceUID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", dir, err)
	}
	if series == "" {
		return nil, fmt.Errorf("%s holds none of the %d source instances the SEG references", dir, len(want))
	}
	var paths []string
	for _, h := range headers {
		if h.SeriesInstanceUID == series {
			paths = append(paths, h.Path)
		}
	}
	return paths, nil
}

// reorder moves flags after the positional SEG argument in front of it, so
// that `tmcad preview SEG.dcm --source DIR -o out.png` parses.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if i+1 < len(args) && !containsEq(a) && a != "-h" && a != "--help" {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}
