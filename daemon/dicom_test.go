package daemon

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// testInstance describes a tiny synthetic DICOM instance.
type testInstance struct {
	Study, Series, SOP string
	Modality           string
	Accession          string
	Number             int
	Rows, Cols         int
	Fill               uint16
}

// elem appends one explicit-VR little-endian element.
func elem(b *bytes.Buffer, group, el uint16, vr string, val []byte) {
	if len(val)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" || vr == "OB" || vr == "OW" {
			pad = 0
		}
		val = append(val, pad)
	}
	binary.Write(b, binary.LittleEndian, group)
	binary.Write(b, binary.LittleEndian, el)
	b.WriteString(vr)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT", "UC", "UR":
		b.Write([]byte{0, 0})
		binary.Write(b, binary.LittleEndian, uint32(len(val)))
	default:
		binary.Write(b, binary.LittleEndian, uint16(len(val)))
	}
	b.Write(val)
}

func us(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }

// bytes encodes the instance as a Part 10 file.
func (ti testInstance) bytes() []byte {
	const ctImage = "1.2.840.10008.5.1.4.1.1.2"
	const explicitLE = "1.2.840.10008.1.2.1"
	var meta bytes.Buffer
	elem(&meta, 0x0002, 0x0001, "OB", []byte{0, 1})
	elem(&meta, 0x0002, 0x0002, "UI", []byte(ctImage))
	elem(&meta, 0x0002, 0x0003, "UI", []byte(ti.SOP))
	elem(&meta, 0x0002, 0x0010, "UI", []byte(explicitLE))
	elem(&meta, 0x0002, 0x0012, "UI", []byte("1.2.3.4"))
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	elem(&out, 0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(meta.Len())))
	out.Write(meta.Bytes())
	elem(&out, 0x0008, 0x0008, "CS", []byte(`ORIGINAL\PRIMARY\AXIAL`))
	elem(&out, 0x0008, 0x0016, "UI", []byte(ctImage))
	elem(&out, 0x0008, 0x0018, "UI", []byte(ti.SOP))
	elem(&out, 0x0008, 0x0020, "DA", []byte("20240102"))
	elem(&out, 0x0008, 0x0050, "SH", []byte(ti.Accession))
	elem(&out, 0x0008, 0x0060, "CS", []byte(ti.Modality))
	elem(&out, 0x0010, 0x0010, "PN", []byte("DOE^JANE"))
	elem(&out, 0x0010, 0x0020, "LO", []byte("PID-SECRET-42"))
	elem(&out, 0x0020, 0x000D, "UI", []byte(ti.Study))
	elem(&out, 0x0020, 0x000E, "UI", []byte(ti.Series))
	elem(&out, 0x0020, 0x0013, "IS", []byte(itoa(ti.Number)))
	elem(&out, 0x0028, 0x0002, "US", us(1))
	elem(&out, 0x0028, 0x0004, "CS", []byte("MONOCHROME2"))
	elem(&out, 0x0028, 0x0010, "US", us(ti.Rows))
	elem(&out, 0x0028, 0x0011, "US", us(ti.Cols))
	elem(&out, 0x0028, 0x0100, "US", us(16))
	elem(&out, 0x0028, 0x0101, "US", us(16))
	elem(&out, 0x0028, 0x0102, "US", us(15))
	elem(&out, 0x0028, 0x0103, "US", us(0))
	px := make([]byte, 2*ti.Rows*ti.Cols)
	for i := 0; i < ti.Rows*ti.Cols; i++ {
		binary.LittleEndian.PutUint16(px[2*i:], ti.Fill+uint16(i%7))
	}
	elem(&out, 0x7FE0, 0x0010, "OW", px)
	return out.Bytes()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	if neg {
		s = "-" + s
	}
	return s
}

// writeInstance writes ti to dir/name atomically (temp name, then rename),
// as storescp-like senders do.
func writeInstance(t *testing.T, dir, name string, ti testInstance) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p+".part", ti.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".part", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSeries returns n instances of one series.
func testSeries(study, series string, n int) []testInstance {
	out := make([]testInstance, n)
	for i := range out {
		out[i] = testInstance{Study: study, Series: series, SOP: series + "." + itoa(i+1), Modality: "CT", Accession: "ACC" + series[len(series)-1:],
			Number: i + 1, Rows: 8, Cols: 8, Fill: uint16(100 * (i + 1))}
	}
	return out
}
