package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// element writes one explicit VR little endian element.
func element(b *bytes.Buffer, group, elem uint16, vr string, val []byte) {
	if len(val)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" || vr == "OB" {
			pad = 0
		}
		val = append(val, pad)
	}
	_ = binary.Write(b, binary.LittleEndian, [2]uint16{group, elem})
	b.WriteString(vr)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT":
		b.Write([]byte{0, 0})
		_ = binary.Write(b, binary.LittleEndian, uint32(len(val)))
	default:
		_ = binary.Write(b, binary.LittleEndian, uint16(len(val)))
	}
	b.Write(val)
}

func us(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

// writeCT writes slice k of a synthetic CT series (explicit VR little
// endian, 16-bit signed, rescale intercept -1024) holding the stored
// values (size × size, row by row).
func writeCT(path, series string, k, size int, values []int16) error {
	return writeCTAs(path, series, k, size, values, ctFormat{bitsStored: 16, signed: true})
}

// ctFormat is how writeCTAs stores a slice: BitsStored (HighBit one
// below), signedness, and either native pixel data (codestream nil) or
// one encapsulated frame, the codestream, in transfer syntax ts.
type ctFormat struct {
	bitsStored int
	signed     bool
	ts         string
	codestream []byte
}

// writeCTAs is writeCT in the format f.
func writeCTAs(path, series string, k, size int, values []int16, f ctFormat) error {
	ts := "1.2.840.10008.1.2.1"
	if f.codestream != nil {
		ts = f.ts
	}
	var meta, ds bytes.Buffer
	sop := fmt.Sprintf("%s.%d", series, k+1)
	const ct = "1.2.840.10008.5.1.4.1.1.2"
	var mb bytes.Buffer
	element(&mb, 0x0002, 0x0001, "OB", []byte{0, 1})
	element(&mb, 0x0002, 0x0002, "UI", []byte(ct))
	element(&mb, 0x0002, 0x0003, "UI", []byte(sop))
	element(&mb, 0x0002, 0x0010, "UI", []byte(ts))
	element(&mb, 0x0002, 0x0012, "UI", []byte("1.2.826.0.1.3680043.10.1234.99"))
	meta.Write(make([]byte, 128))
	meta.WriteString("DICM")
	element(&meta, 0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(mb.Len())))
	meta.Write(mb.Bytes())

	element(&ds, 0x0008, 0x0008, "CS", []byte(`ORIGINAL\PRIMARY\AXIAL`))
	element(&ds, 0x0008, 0x0016, "UI", []byte(ct))
	element(&ds, 0x0008, 0x0018, "UI", []byte(sop))
	element(&ds, 0x0008, 0x0020, "DA", []byte("20240102"))
	element(&ds, 0x0008, 0x0050, "SH", []byte("BENCH1"))
	element(&ds, 0x0008, 0x0060, "CS", []byte("CT"))
	element(&ds, 0x0010, 0x0010, "PN", []byte("Bench^Patient"))
	element(&ds, 0x0010, 0x0020, "LO", []byte("BENCH"))
	element(&ds, 0x0018, 0x0015, "CS", []byte("CHEST"))
	element(&ds, 0x0018, 0x0050, "DS", []byte("1.0"))
	element(&ds, 0x0020, 0x000D, "UI", []byte("1.2.826.0.1.3680043.10.1234.500"))
	element(&ds, 0x0020, 0x000E, "UI", []byte(series))
	element(&ds, 0x0020, 0x0011, "IS", []byte("3"))
	element(&ds, 0x0020, 0x0013, "IS", []byte(fmt.Sprint(k+1)))
	element(&ds, 0x0020, 0x0032, "DS", []byte(fmt.Sprintf(`-250\-250\%d`, -k)))
	element(&ds, 0x0020, 0x0037, "DS", []byte(`1\0\0\0\1\0`))
	element(&ds, 0x0020, 0x0052, "UI", []byte("1.2.826.0.1.3680043.10.1234.501"))
	element(&ds, 0x0028, 0x0002, "US", us(1))
	element(&ds, 0x0028, 0x0004, "CS", []byte("MONOCHROME2"))
	element(&ds, 0x0028, 0x0010, "US", us(uint16(size)))
	element(&ds, 0x0028, 0x0011, "US", us(uint16(size)))
	element(&ds, 0x0028, 0x0030, "DS", []byte(`0.7\0.7`))
	element(&ds, 0x0028, 0x0100, "US", us(16))
	element(&ds, 0x0028, 0x0101, "US", us(uint16(f.bitsStored)))
	element(&ds, 0x0028, 0x0102, "US", us(uint16(f.bitsStored-1)))
	pr := uint16(0)
	if f.signed {
		pr = 1
	}
	element(&ds, 0x0028, 0x0103, "US", us(pr))
	element(&ds, 0x0028, 0x1052, "DS", []byte("-1024"))
	element(&ds, 0x0028, 0x1053, "DS", []byte("1"))
	if f.codestream != nil {
		// Encapsulated (PS3.5 A.4): an empty Basic Offset Table, the
		// frame as one fragment, the sequence delimiter.
		item := func(e uint16, val []byte) {
			_ = binary.Write(&ds, binary.LittleEndian, [2]uint16{0xFFFE, e})
			_ = binary.Write(&ds, binary.LittleEndian, uint32(len(val)))
			ds.Write(val)
		}
		_ = binary.Write(&ds, binary.LittleEndian, [2]uint16{0x7FE0, 0x0010})
		ds.WriteString("OB\x00\x00")
		_ = binary.Write(&ds, binary.LittleEndian, uint32(0xFFFFFFFF))
		item(0xE000, nil)
		cs := f.codestream
		if len(cs)%2 == 1 {
			cs = append(cs[:len(cs):len(cs)], 0)
		}
		item(0xE000, cs)
		item(0xE0DD, nil)
	} else {
		px := make([]byte, 2*size*size)
		for i, v := range values {
			binary.LittleEndian.PutUint16(px[2*i:], uint16(v))
		}
		element(&ds, 0x7FE0, 0x0010, "OW", px)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := out.Write(append(meta.Bytes(), ds.Bytes()...)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ensureSeries writes n slices of size×size into dir unless already there.
func ensureSeries(dir string, n, size int) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	paths := make([]string, n)
	for k := 0; k < n; k++ {
		paths[k] = filepath.Join(dir, fmt.Sprintf("ct%04d.dcm", k))
		if st, err := os.Stat(paths[k]); err == nil && st.Size() > int64(2*size*size) {
			continue
		}
		if err := writeCT(paths[k], "1.2.826.0.1.3680043.10.1234.502", k, size, waveSlice(k, size)); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// waveSlice is slice k of the native section's series: a smooth wave
// pattern around 0 HU.
func waveSlice(k, size int) []int16 {
	v := make([]int16, size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			v[y*size+x] = int16(1024 + 600*math.Sin(float64(x)/17+float64(k)/9)*math.Cos(float64(y)/23))
		}
	}
	return v
}

// phantomSlice is slice k of the compressed section's series: a chest-like
// phantom (air, a body of soft tissue with two lungs and a spine) with
// Gaussian noise of 15 HU in the body and 4 HU in the air, so that the
// lossless codecs compress it about as much as a real CT (the wave
// pattern would compress many times more and decode faster than any
// scanner's image). Deterministic: the noise is seeded by k.
func phantomSlice(k, size int) []int16 {
	rng := rand.New(rand.NewPCG(uint64(k), 4712))
	sq := func(a float64) float64 { return a * a }
	s := float64(size)
	breath := 1 + 0.1*math.Sin(float64(k)/40)
	v := make([]int16, size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			fx, fy := (float64(x)-s/2)/s, (float64(y)-s/2)/s
			hu, sigma := -1000.0, 4.0
			if sq(fx/0.42)+sq(fy/0.30) < 1 {
				hu, sigma = 40, 15
				if sq((math.Abs(fx)-0.2)/(0.14*breath))+sq(fy/0.2) < 1 {
					hu = -850 + 60*math.Sin(fx*40+float64(k)/7)*math.Cos(fy*30)
				}
				if sq(fx/0.05)+sq((fy-0.22)/0.05) < 1 {
					hu = 700
				}
			}
			st := math.Round(hu + 1024 + sigma*rng.NormFloat64())
			v[y*size+x] = int16(min(max(st, 0), 4095))
		}
	}
	return v
}
