// Package e2e holds tmcad's end-to-end tests: each starts the real
// `tmcad run` binary as a separate process on temporary folders, with the
// shipped model and real peers (dcmtk's storescp/storescu, Orthanc with
// its DICOMweb plugin, a throwaway PostgreSQL), and checks what a site
// would check: every selected series gets exactly one SEG in the archive,
// nothing is lost across crashes and outages, schedules are kept.
//
// The package has no code of its own; run it with `go test ./e2e`. A
// missing tool fails the test with "run make deps"; nothing is skipped.
package e2e
