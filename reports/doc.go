// Package reports turns radiology reports into the text that guides the
// segmentation model.
//
// It reads reports from several sources (plain text, JSON sidecars, HL7 v2
// ORU^R01 messages and DICOM Structured Reports) behind one small Source
// interface, decodes their character sets, extracts the configured sections
// (FINDINGS and IMPRESSION by default), matches a report to a study
// (StudyInstanceUID, then AccessionNumber, then PatientID + StudyDate when
// unambiguous), and tokenizes the text with a BERT WordPiece tokenizer that is
// identical to the Python side (docs/CONTRACTS.md).
//
// Reports carry PHI. Nothing in this package logs, and no error it returns
// contains report text, patient identifiers or accession numbers; use
// Report.Hash and UIDs to refer to a report in logs.
//
// The package imports nothing else of this module: the wiring layer maps the
// daemon's configuration onto Options and MatchOptions.
package reports
