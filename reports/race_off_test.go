//go:build !race

package reports

// raceEnabled: see race_on_test.go.
const raceEnabled = false
