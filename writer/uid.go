package writer

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/google/uuid"
)

// maxRootLen leaves at least 20 decimal digits of hash under an org root.
const maxRootLen = 43

// uidNamespace is the UUID namespace of tmcad's name-based SEG UIDs.
var uidNamespace = uuid.NewSHA1(uuid.NameSpaceOID, []byte("tmcad/writer/seg"))

// ImplementationClassUID identifies tmcad's writer in the File Meta
// Information (a fixed name-based "2.25." UID).
var ImplementationClassUID = uuidUID(uuid.NewSHA1(uidNamespace, []byte("implementation-class")))

// ImplementationVersionName is written to the File Meta Information.
const ImplementationVersionName = "TMCAD_WRITER_1"

// DeriveUID returns a deterministic DICOM UID for the given inputs: the same
// parts always give the same UID. With an empty root it is a "2.25." UID
// made from a name-based (SHA-1, version 5) UUID; under an organisation root
// it is root + "." + decimal digits of a SHA-256 of the parts, at most 64
// characters in all. Parts are length-prefixed, so ("ab","c") and ("a","bc")
// differ.
func DeriveUID(root string, parts ...string) (string, error) {
	var buf []byte
	for _, p := range parts {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	if root == "" {
		return uuidUID(uuid.NewSHA1(uidNamespace, buf)), nil
	}
	if !uidPattern.MatchString(root) || len(root) > maxRootLen {
		return "", fmt.Errorf("writer: UID root %q is not a valid root of at most %d characters", root, maxRootLen)
	}
	sum := sha256.Sum256(buf)
	digits := new(big.Int).SetBytes(sum[:]).String()
	room := 64 - len(root) - 1
	if len(digits) > room {
		digits = digits[:room]
	}
	// big.Int never prints a leading zero, and a prefix of its digits keeps
	// the first one.
	return root + "." + digits, nil
}

func uuidUID(u uuid.UUID) string {
	return "2.25." + new(big.Int).SetBytes(u[:]).String()
}

// segUIDs are the UIDs of one SEG.
type segUIDs struct {
	series, sop, dimOrg string
}

// deriveSEGUIDs makes the SEG's UIDs from the source series UID, the model
// name and version, the report hash and the segmentation type (a BINARY and a
// FRACTIONAL SEG of the same input are different objects).
func deriveSEGUIDs(d Description, sourceSeriesUID string) (segUIDs, error) {
	base := []string{sourceSeriesUID, d.ModelName, d.ModelVersion, d.ReportHash, string(d.Type)}
	var u segUIDs
	var err error
	for _, x := range []struct {
		role string
		dst  *string
	}{{"series", &u.series}, {"sop", &u.sop}, {"dimension-organization", &u.dimOrg}} {
		if *x.dst, err = DeriveUID(d.UIDRoot, append([]string{x.role}, base...)...); err != nil {
			return segUIDs{}, err
		}
	}
	return u, nil
}
