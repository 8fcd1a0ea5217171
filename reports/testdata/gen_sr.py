#!/usr/bin/python3
"""Write the DICOM SR fixtures of reports/sr_test.go (pydicom 2.3).

Run from the repository root:  /usr/bin/python3 reports/testdata/gen_sr.py
Every identifier and name in these files is synthetic.
"""
import os

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

HERE = os.path.dirname(os.path.abspath(__file__))
COMPREHENSIVE = "1.2.840.10008.5.1.4.1.1.88.33"
ENHANCED = "1.2.840.10008.5.1.4.1.1.88.22"
BASIC = "1.2.840.10008.5.1.4.1.1.88.11"


def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def text(meaning, value, code_value="121071"):
    it = Dataset()
    it.RelationshipType = "CONTAINS"
    it.ValueType = "TEXT"
    it.ConceptNameCodeSequence = Sequence([code(code_value, "DCM", meaning)])
    it.TextValue = value
    return it


def container(meaning, code_value, children):
    it = Dataset()
    it.RelationshipType = "CONTAINS"
    it.ValueType = "CONTAINER"
    it.ConceptNameCodeSequence = Sequence([code(code_value, "DCM", meaning)])
    it.ContinuityOfContent = "SEPARATE"
    it.ContentSequence = Sequence(children)
    return it


def sr(path, sop_class, charset, content, completion="COMPLETE", verification="VERIFIED",
       predecessor=False, ts=ExplicitVRLittleEndian, raw_text=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1001." + str(sum(path.encode()))
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = "20240315"
    ds.Modality = "SR"
    ds.AccessionNumber = "ACC7781"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PAT0042"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.78"
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.ContinuityOfContent = "SEPARATE"
    if sop_class != BASIC or completion:
        ds.CompletionFlag = completion
        ds.VerificationFlag = verification
    if predecessor:
        ref = Dataset()
        ref.StudyInstanceUID = ds.StudyInstanceUID
        ds.PredecessorDocumentsSequence = Sequence([ref])
    ds.ContentSequence = Sequence(content)
    ds.save_as(os.path.join(HERE, path), write_like_original=False)


def report_tree(findings, impression):
    return [
        text("Clinical History", "Cough and fever for three days.", "121060"),
        container("Findings", "121070", [text("Finding", f) for f in findings]),
        container("Impressions", "121072", [text("Impression", impression, "121073")]),
    ]


# Comprehensive SR in ISO_IR 100 (Latin-1): accents survive decoding.
sr("sr_comprehensive_latin1.dcm", COMPREHENSIVE, "ISO_IR 100", report_tree(
    ["Opacité in the left lower lobe.", "No pleural effusion."],
    "Left lower lobe pneumonia."))
# Enhanced SR in UTF-8, preliminary.
sr("sr_enhanced_utf8_prelim.dcm", ENHANCED, "ISO_IR 192", report_tree(
    ["Ground-glass opacity, right upper lobe \u2014 small."], "Früh infection."),
   completion="PARTIAL", verification="UNVERIFIED")
# Basic Text SR, default repertoire, implicit VR, corrected (has a predecessor).
sr("sr_basic_corrected.dcm", BASIC, None, report_tree(
    ["Clear lungs."], "No acute disease."), predecessor=True, ts=ImplicitVRLittleEndian)

# ISO_IR 192 declared but the TextValue holds Latin-1 bytes: must fail.
bad = report_tree(["placeholder"], "Normal.")
bad[1].ContentSequence[0].TextValue = b"Opacit\xe9 bad bytes."  # raw bytes, written as is
sr("sr_invalid_utf8.dcm", ENHANCED, "ISO_IR 192", bad)
