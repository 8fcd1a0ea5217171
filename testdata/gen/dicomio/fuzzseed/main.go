// Command fuzzseed writes the FuzzReadHeader seed corpus from the dicomio
// fixtures: whole small files, truncated ones, and ones with a corrupted
// length, in the "go test fuzz v1" format. Run from the repository root:
//
//	go run ./testdata/gen/dicomio/fuzzseed
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	out := filepath.Join("dicomio", "testdata", "fuzz", "FuzzReadHeader")
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range []string{"ts/implicit.dcm", "ts/explicit.dcm", "ts/bigendian.dcm", "ts/deflated.dcm",
		"ts/jpeg_baseline.dcm", "ts/jpeg2000.dcm", "enhanced/ct_enhanced.dcm", "pixel/cr_monochrome1.dcm"} {
		b, err := os.ReadFile(filepath.Join("dicomio", "testdata", p))
		if err != nil {
			log.Fatal(err)
		}
		seeds = append(seeds, b)
		if len(b) > 400 {
			seeds = append(seeds, b[:400]) // truncated inside the data set
			seeds = append(seeds, b[128:]) // no preamble
			c := append([]byte(nil), b...) // a length that overruns the file
			binary.LittleEndian.PutUint16(c[len(c)/3:], 0xFFF0)
			seeds = append(seeds, c)
		}
	}
	seeds = append(seeds, []byte{}, []byte("DICM"), make([]byte, 132))
	for _, s := range seeds {
		sum := sha256.Sum256(s)
		name := hex.EncodeToString(sum[:8])
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(len(seeds), "seeds in", out)
}
