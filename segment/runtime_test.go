package segment

import (
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// initTestRuntime loads the library that `make deps` installed; a missing
// library fails the test (never skips), so a broken set-up is loud.
func initTestRuntime(t testing.TB) {
	t.Helper()
	p, err := ResolveLibrary("")
	if err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := InitRuntime(p); err != nil {
		t.Fatalf("%v", err)
	}
}

// TestSmokeTinyGraph loads ONNX Runtime through onnxruntime_go and runs the
// tiny graph in testdata, proving the set-up works end to end.
func TestSmokeTinyGraph(t *testing.T) {
	initTestRuntime(t)
	v, err := RuntimeVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v != ExpectedORTVersion {
		t.Fatalf("onnxruntime version %s, want %s", v, ExpectedORTVersion)
	}
	in, err := ort.NewTensor(ort.NewShape(2, 4), []float32{0, 1, 2, 3, -1, -2, 0.5, 10})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(2, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	s, err := ort.NewAdvancedSession("../testdata/onnx/tiny.onnx", []string{"x"}, []string{"y"}, []ort.Value{in}, []ort.Value{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 3, 5, 7, -1, -3, 2, 21}
	for i, g := range out.GetData() {
		if g != want[i] {
			t.Fatalf("y[%d] = %v, want %v", i, g, want[i])
		}
	}
}

func TestResolveLibraryOrder(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "custom.so")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibraryEnv, "")
	if p, err := ResolveLibrary(lib); err != nil || p != lib {
		t.Fatalf("configured path: %q %v", p, err)
	}
	t.Setenv(LibraryEnv, filepath.Join(dir, "missing.so"))
	if _, err := ResolveLibrary(lib); err == nil {
		t.Fatal("a missing $TMCAD_ORT_LIB was accepted")
	}
	t.Setenv(LibraryEnv, lib)
	if p, err := ResolveLibrary("/nonexistent"); err != nil || p != lib {
		t.Fatalf("env overrides config: %q %v", p, err)
	}
}
