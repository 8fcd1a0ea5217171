package reports

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	dcharset "github.com/suyashkumar/dicom/pkg/charset"
)

// The DICOM library decodes strings by SpecificCharacterSet itself, maps
// ISO_IR 100 to Windows-1252, and loses its place in the file when an
// ISO_IR 192 string holds invalid UTF-8. So before parsing, srCharset
// finds SpecificCharacterSet (0008,0005), the first element of the data
// set proper, reads it, and blanks it in a copy of the file; the library
// then hands over raw bytes, which srDoc.str decodes and validates.

// srCharset returns data with SpecificCharacterSet blanked (or data itself
// when there is none) and the character set's terms. patched is false when
// the file could not be patched (deflated transfer syntax, odd layout), in
// which case the library decodes. out is nil when the file is malformed:
// an unreadable meta group, or an element whose declared length runs past
// the end of the file (see checkSRLengths).
func srCharset(data []byte) (out []byte, terms []string, patched bool) {
	if len(data) < 144 || string(data[128:132]) != "DICM" {
		return nil, nil, false
	}
	// File meta information: explicit VR little endian, group length first.
	if binary.LittleEndian.Uint16(data[132:]) != 0x0002 || binary.LittleEndian.Uint16(data[134:]) != 0x0000 {
		return nil, nil, false
	}
	metaEnd := 144 + int64(binary.LittleEndian.Uint32(data[140:]))
	if metaEnd > int64(len(data)) {
		return nil, nil, false
	}
	ts := ""
	for pos := int64(144); pos+8 <= metaEnd; {
		group, elem := binary.LittleEndian.Uint16(data[pos:]), binary.LittleEndian.Uint16(data[pos+2:])
		vr := string(data[pos+4 : pos+6])
		var vl, hdr int64
		if longVR(vr) {
			if pos+12 > metaEnd {
				return nil, nil, false
			}
			vl, hdr = int64(binary.LittleEndian.Uint32(data[pos+8:])), 12
		} else {
			vl, hdr = int64(binary.LittleEndian.Uint16(data[pos+6:])), 8
		}
		if pos+hdr+vl > metaEnd || vl < 0 {
			return nil, nil, false
		}
		if group == 0x0002 && elem == 0x0010 {
			ts = strings.TrimRight(string(data[pos+hdr:pos+hdr+vl]), "\x00 ")
		}
		pos += hdr + vl
	}
	var bo binary.ByteOrder = binary.LittleEndian
	implicit := false
	switch ts {
	case "1.2.840.10008.1.2":
		implicit = true
	case "1.2.840.10008.1.2.2":
		bo = binary.BigEndian
	case "1.2.840.10008.1.2.1.99":
		return data, nil, false // deflated: the bytes are compressed; the library decodes
	}
	if err := checkSRLengths(data, metaEnd, bo, implicit); err != nil {
		return nil, nil, false
	}
	pos := metaEnd
	for i := 0; i < 3 && pos+8 <= int64(len(data)); i++ {
		group, elem := bo.Uint16(data[pos:]), bo.Uint16(data[pos+2:])
		if group != 0x0008 || elem > 0x0005 {
			return data, nil, true // no SpecificCharacterSet: default repertoire
		}
		var vl, hdr int64
		switch {
		case implicit:
			vl, hdr = int64(bo.Uint32(data[pos+4:])), 8
		case longVR(string(data[pos+4 : pos+6])):
			if pos+12 > int64(len(data)) {
				return nil, nil, false
			}
			vl, hdr = int64(bo.Uint32(data[pos+8:])), 12
		default:
			vl, hdr = int64(bo.Uint16(data[pos+6:])), 8
		}
		if vl == 0xFFFFFFFF || pos+hdr+vl > int64(len(data)) {
			return nil, nil, false
		}
		if elem == 0x0005 {
			val := data[pos+hdr : pos+hdr+vl]
			for _, t := range strings.Split(string(val), "\\") {
				terms = append(terms, strings.Trim(t, " \x00"))
			}
			out = make([]byte, len(data))
			copy(out, data)
			for k := pos + hdr; k < pos+hdr+vl; k++ {
				out[k] = ' '
			}
			return out, terms, true
		}
		pos += hdr + vl
	}
	return data, nil, true
}

// longVR reports whether an explicit VR has a 4-byte length.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// srDecoder decodes the raw strings of one SR document.
type srDecoder struct {
	name   string
	mode   string // "default", "latin1", "utf8", "other", "library"
	other  dcharset.CodingSystem
	latin1 bool // default repertoire falls back to ISO 8859-1
}

// newSRDecoder chooses the decoding for the character set terms.
func newSRDecoder(name string, terms []string, patched bool, fallbackLatin1 bool) (*srDecoder, error) {
	d := &srDecoder{name: name, latin1: fallbackLatin1}
	nonEmpty := terms[:0:0]
	for _, t := range terms {
		if t != "" {
			nonEmpty = append(nonEmpty, t)
		}
	}
	switch {
	case !patched:
		d.mode = "library"
	case len(nonEmpty) == 0 || (len(nonEmpty) == 1 && nonEmpty[0] == "ISO_IR 6"):
		d.mode = "default"
	case len(nonEmpty) == 1 && (nonEmpty[0] == "ISO_IR 100" || nonEmpty[0] == "ISO 2022 IR 100"):
		d.mode = "latin1"
	case len(nonEmpty) == 1 && nonEmpty[0] == "ISO_IR 192":
		d.mode = "utf8"
	default:
		cs, err := dcharset.ParseSpecificCharacterSet(terms)
		if err != nil {
			return nil, fmt.Errorf("sr report %s: SpecificCharacterSet %q is not supported", name, truncateForError(strings.Join(terms, "\\")))
		}
		d.mode, d.other = "other", cs
	}
	return d, nil
}

// decode decodes one raw string value; what names the attribute.
func (d *srDecoder) decode(s, what string) (string, error) {
	switch d.mode {
	case "latin1":
		if isASCIIString(s) {
			return s, nil
		}
		return decodeLatin1([]byte(s)), nil
	case "utf8":
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("sr report %s: invalid UTF-8 in %s although SpecificCharacterSet is ISO_IR 192", d.name, what)
		}
	case "default":
		if !utf8.ValidString(s) {
			if d.latin1 {
				return decodeLatin1([]byte(s)), nil
			}
			return "", fmt.Errorf("sr report %s: bytes outside the default character repertoire in %s: set SpecificCharacterSet, or the reports charset to \"latin1\"", d.name, what)
		}
	case "other":
		if d.other.Ideographic != nil && !isASCIIString(s) {
			out, err := d.other.Ideographic.String(s)
			if err != nil {
				return "", fmt.Errorf("sr report %s: %s cannot be decoded in its SpecificCharacterSet", d.name, what)
			}
			return out, nil
		}
	}
	return s, nil
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
