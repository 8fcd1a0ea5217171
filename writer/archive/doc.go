// Package archive stores DICOM objects (SEGs and the objects made with
// them) in an archive, through one small interface, Sink: FilesystemSink
// (<study>/<series>/<sop>.dcm, atomic and idempotent), DICOMwebSink
// (STOW-RS) and DIMSESink (C-STORE through dcmtk's dcmsend).
//
// Every sink's Put is idempotent and returns only once the object is
// durably stored; IsPermanent tells an error that sending the same bytes
// again will not cure from one that may pass. Nothing in this package
// logs (retries are reported through the sinks' OnRetry), and no error
// message carries patient data: errors name UIDs, the archive and counts.
package archive
