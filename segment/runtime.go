// Package segment runs the TMCA model behind ONNX Runtime: the model
// manifest, pre-processing, batched inference and post-processing to masks.
// It knows nothing about queues, files arriving or archives.
package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv is the environment variable that names the ONNX Runtime
// shared library; it overrides the config key ort.library.
const LibraryEnv = "TMCAD_ORT_LIB"

// LibraryName is the file name of the ONNX Runtime shared library that
// `make deps` places in third_party/onnxruntime/.
const LibraryName = "libonnxruntime.so.1"

// ExpectedORTVersion is the ONNX Runtime version the project is built and
// tested against.
const ExpectedORTVersion = "1.30.0"

// ResolveLibrary finds the ONNX Runtime library: $TMCAD_ORT_LIB, then the
// configured path, then third_party/onnxruntime/ beside the executable (or
// its parent, for bin/tmcad), then in the working directory or any parent,
// then /usr/lib/tmcad/. The error lists every place looked at.
func ResolveLibrary(configured string) (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if err := isFile(p); err != nil {
			return "", fmt.Errorf("onnxruntime library from %s: %w", LibraryEnv, err)
		}
		return p, nil
	}
	if configured != "" {
		if err := isFile(configured); err != nil {
			return "", fmt.Errorf("onnxruntime library from ort.library: %w", err)
		}
		return configured, nil
	}
	var tried []string
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		d := filepath.Dir(exe)
		dirs = append(dirs, d, filepath.Dir(d))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "third_party", "onnxruntime", LibraryName)
		tried = append(tried, p)
		if isFile(p) == nil {
			return p, nil
		}
	}
	p := filepath.Join("/usr/lib/tmcad", LibraryName)
	tried = append(tried, p)
	if isFile(p) == nil {
		return p, nil
	}
	return "", fmt.Errorf("onnxruntime library %s not found (run `make deps`, or set %s or ort.library); looked in: %v", LibraryName, LibraryEnv, tried)
}

func isFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	return nil
}

var (
	runtimeMu   sync.Mutex
	runtimePath string
)

// InitRuntime loads the ONNX Runtime library at path and creates the
// process-wide environment. It may be called again with the same path; a
// different path after a successful load is an error. It returns the
// library's version.
func InitRuntime(path string) (string, error) {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if ort.IsInitialized() {
		if path != runtimePath {
			return "", fmt.Errorf("onnxruntime already loaded from %s, cannot load %s", runtimePath, path)
		}
		return ort.GetVersion(), nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("loading onnxruntime from %s: %w", path, err)
	}
	runtimePath = path
	return ort.GetVersion(), nil
}

// RuntimeVersion returns the loaded ONNX Runtime version, or an error when
// none is loaded.
func RuntimeVersion() (string, error) {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if !ort.IsInitialized() {
		return "", errors.New("onnxruntime is not loaded")
	}
	return ort.GetVersion(), nil
}
