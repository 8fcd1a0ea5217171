package dicomio

import (
	"strings"
	"testing"
)

func hdr(series, sop, modality, body string, frames int, imageType ...string) Header {
	return Header{Path: sop + ".dcm", SeriesInstanceUID: series, SOPInstanceUID: sop, Modality: modality,
		BodyPartExamined: body, NumberOfFrames: frames, ImageType: imageType, HasPixelData: true,
		SamplesPerPixel: 1, TransferSyntaxUID: ExplicitVRLittleEndian}
}

func TestGroupSeries(t *testing.T) {
	g := GroupSeries([]Header{hdr("s1", "a", "CT", "", 1), hdr("s2", "b", "CR", "", 1), hdr("s1", "c", "CT", "", 1)})
	if len(g) != 2 || g[0].SeriesInstanceUID != "s1" || len(g[0].Headers) != 2 || g[0].Paths()[1] != "c.dcm" || g[1].Modality != "CR" {
		t.Fatalf("%+v", g)
	}
}

func TestSelect(t *testing.T) {
	hs := []Header{
		hdr("ct", "1", "CT", "CHEST", 1, "ORIGINAL", "PRIMARY", "AXIAL"),
		hdr("ct", "2", "CT", "CHEST", 1, "ORIGINAL", "PRIMARY", "AXIAL"),
		hdr("ct", "3", "CT", "CHEST", 1, "ORIGINAL", "PRIMARY", "localizer"),
		hdr("sc", "4", "OT", "CHEST", 1, "DERIVED", "SECONDARY"),
		hdr("mr", "5", "MR", "HEAD", 1, "ORIGINAL", "PRIMARY"),
		hdr("cr", "6", "CR", "chest", 1, "ORIGINAL", "PRIMARY"),
		hdr("j2k", "7", "CT", "CHEST", 3, "ORIGINAL", "PRIMARY"),
	}
	hs[6].TransferSyntaxUID = "1.2.840.10008.1.2.4.92"
	kept, skipped := Select(hs, Selector{Modalities: []string{"CT", "CR", "OT"}, BodyParts: []string{"CHEST"}, MinSlices: 1})
	var ids []string
	for _, k := range kept {
		ids = append(ids, k.SeriesInstanceUID)
	}
	if strings.Join(ids, ",") != "ct,cr" {
		t.Fatalf("kept %v", ids)
	}
	reasons := map[string]string{}
	for _, s := range skipped {
		key := s.SeriesInstanceUID
		if s.SOPInstanceUID != "" {
			key += "/" + s.SOPInstanceUID
		}
		reasons[key] = s.Reason
	}
	for key, want := range map[string]string{
		"ct/3":  "LOCALIZER",
		"sc/4":  "DERIVED",
		"sc":    "no instance left",
		"mr":    `modality "MR"`,
		"j2k/7": "unsupported transfer syntax 1.2.840.10008.1.2.4.92 (JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only))",
	} {
		if !strings.Contains(reasons[key], want) {
			t.Errorf("skip %s: reason %q, want %q (all: %v)", key, reasons[key], want, reasons)
		}
	}
	kept, skipped = Select(hs[:3], Selector{MinSlices: 3})
	if len(kept) != 0 || !strings.Contains(skipped[len(skipped)-1].Reason, "2 frame(s), fewer than the minimum 3") {
		t.Errorf("MinSlices: kept %v skipped %v", kept, skipped)
	}
	kept, _ = Select(hs[:3], Selector{SkipImageTypes: []string{}})
	if len(kept) != 1 || len(kept[0].Headers) != 3 {
		t.Errorf("empty SkipImageTypes skips nothing: %+v", kept)
	}
	_, skipped = Select(hs[4:5], Selector{BodyParts: []string{"CHEST"}})
	if len(skipped) != 1 || !strings.Contains(skipped[0].Reason, `body part "HEAD"`) {
		t.Errorf("body part: %+v", skipped)
	}
}
