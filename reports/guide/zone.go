package guide

import "strings"

// Side is a patient's side.
type Side uint8

// Sides. Both stands for right and left together.
const (
	NoSide Side = iota
	Right
	Left
	Both
)

// String returns "right", "left", "both" or "".
func (s Side) String() string {
	switch s {
	case Right:
		return "right"
	case Left:
		return "left"
	case Both:
		return "both"
	}
	return ""
}

func parseSide(s string) (Side, bool) {
	switch s {
	case "right":
		return Right, true
	case "left":
		return Left, true
	case "both":
		return Both, true
	}
	return NoSide, false
}

// sides expands Both into Right and Left.
func (s Side) sides() []Side {
	switch s {
	case Both:
		return []Side{Right, Left}
	case Right, Left:
		return []Side{s}
	}
	return nil
}

// Level is a lung zone's level: the lung's vertical extent cut in thirds.
type Level uint8

// Levels.
const (
	NoLevel Level = iota
	Upper
	Middle
	Lower
)

// String returns "upper", "middle", "lower" or "".
func (l Level) String() string {
	switch l {
	case Upper:
		return "upper"
	case Middle:
		return "middle"
	case Lower:
		return "lower"
	}
	return ""
}

func parseLevel(s string) (Level, bool) {
	switch s {
	case "upper":
		return Upper, true
	case "middle":
		return Middle, true
	case "lower":
		return Lower, true
	}
	return NoLevel, false
}

var allLevels = []Level{Upper, Middle, Lower}

// Zone is one of the six lung zones: a level of the right or left lung.
type Zone struct {
	Level Level
	Side  Side
}

// String returns e.g. "lower left".
func (z Zone) String() string { return z.Level.String() + " " + z.Side.String() }

// index orders the zones as the model's training data does: right upper,
// right middle, right lower, left upper, left middle, left lower.
func (z Zone) index() int {
	i := int(z.Level) - 1
	if z.Side == Left {
		i += 3
	}
	return i
}

// zonesString joins zones for an explanation.
func zonesString(zs []Zone) string {
	parts := make([]string, len(zs))
	for i, z := range zs {
		parts[i] = z.String()
	}
	return strings.Join(parts, ", ")
}
