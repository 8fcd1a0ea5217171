package main

import (
	"fmt"
	"io"
	"runtime"

	"tmcad/logging"
	"tmcad/segment"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "[flags]", "Prints the tmcad version and commit, loads ONNX Runtime to print the version actually\n"+
		"loaded, and, when a model is found (--model, the config's model.dir, or the shipped model),\n"+
		"creates its session to print the execution provider in use.", stderr)
	cfgPath := fs.String("config", "", "configuration file (ort.library, model.*)")
	model := fs.String("model", "", "model folder (overrides model.dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tmcad %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	path, err := segment.ResolveLibrary(cfg.ORT.Library)
	if err != nil {
		return err
	}
	v, err := segment.InitRuntime(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "onnxruntime %s (%s)\n", v, path)

	m, err := segment.LoadManifest(modelDir(*model, *cfgPath != "", cfg.Model.Dir))
	if err != nil {
		fmt.Fprintf(stdout, "model: none loaded (%v)\n", err)
		return nil
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	e, err := segment.NewEngine(m, segment.Options{
		Provider: cfg.Model.ExecutionProvider, DeviceID: cfg.Model.DeviceID,
		FallbackToCPU: cfg.Model.FallbackToCPU, BatchSize: cfg.Model.BatchSize, Logger: log,
	})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(stdout, "model %s (%s), execution provider %s\n", m.ID(), m.Dir(), e.Provider())
	return nil
}
