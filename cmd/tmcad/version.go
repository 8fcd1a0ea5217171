package main

import (
	"fmt"
	"io"
	"runtime"

	"tmcad/config"
	"tmcad/segment"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "[flags]", "Prints the tmcad version and commit, and loads ONNX Runtime to print the version actually loaded.", stderr)
	cfgPath := fs.String("config", "", "configuration file (for ort.library)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lib := ""
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		lib = c.ORT.Library
	}
	fmt.Fprintf(stdout, "tmcad %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	path, err := segment.ResolveLibrary(lib)
	if err != nil {
		return err
	}
	v, err := segment.InitRuntime(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "onnxruntime %s (%s)\n", v, path)
	return nil
}
