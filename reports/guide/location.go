package guide

// group is one place a sentence names: sides and levels that belong
// together ("right upper and middle zones"), or a lobe ("LLL").
type group struct {
	first, last int // item range in the sentence
	sides       Side
	levels      []Level
	zones       []Zone // a lobe or named region
	levelFirst  bool   // the group began with a level ("upper and lower zones on the right")
	wholeLung   bool   // a side without a level: every zone of that side
	consumed    bool   // a side-only group whose side went to a level-only group
	noSide      string // why a level-only group has no zone
	target      int    // item index of the target finding it describes; -1 when none
	other       int    // item index of the non-target noun it describes; -1 when none
}

// addSide merges a side into the group's sides.
func (g *group) addSide(s Side) {
	switch {
	case g.sides == NoSide:
		g.sides = s
	case g.sides != s:
		g.sides = Both
	}
}

func (g *group) addLevel(l Level) {
	for _, x := range g.levels {
		if x == l {
			return
		}
	}
	g.levels = append(g.levels, l)
}

func (g *group) empty() bool { return g.sides == NoSide && len(g.levels) == 0 && len(g.zones) == 0 }

// place returns the zones the group names.
func (g *group) place() []Zone {
	if len(g.zones) > 0 {
		return g.zones
	}
	levels := g.levels
	if g.wholeLung {
		levels = allLevels
	}
	var zs []Zone
	for _, s := range g.sides.sides() {
		for _, l := range levels {
			zs = append(zs, Zone{Level: l, Side: s})
		}
	}
	return zs
}

// connectors may stand between the words of one place.
var connectors = map[string]bool{"and": true, "or": true, "the": true, "of": true, "on": true, "at": true, "to": true}

func isConnector(it *item) bool {
	if it.punct != 0 {
		return it.punct == ',' || it.punct == '/' || it.punct == '&'
	}
	return len(it.entries) == 0 && len(it.words) == 1 && connectors[it.words[0]]
}

// groups finds the places a sentence names. A run of location words (with
// connectors and words such as "zone" or "lobe" between them) is cut into
// groups: a lobe is a group of its own; a side then levels, or levels then
// a side, make one group, and a new side after a complete group starts the
// next ("right upper and left lower zones").
func groups(its []item) []group {
	var out []group
	for i := 0; i < len(its); {
		if !its[i].location() {
			i++
			continue
		}
		end := i
		for j := i; j < len(its); j++ {
			if its[j].location() || its[j].is(kindLungword) {
				end = j
				continue
			}
			if !isConnector(&its[j]) {
				break
			}
		}
		out = append(out, cutRun(its, i, end)...)
		i = end + 1
	}
	return out
}

// cutRun cuts its[from..to] into groups.
func cutRun(its []item, from, to int) []group {
	var out []group
	cur := group{first: -1}
	flush := func() {
		if !cur.empty() {
			out = append(out, cur)
		}
		cur = group{first: -1}
	}
	touch := func(i int) {
		if cur.first < 0 {
			cur.first = i
		}
		cur.last = i
	}
	for i := from; i <= to; i++ {
		it := &its[i]
		if z, ok := it.get(kindZone); ok {
			flush()
			g := group{first: i, last: i}
			for _, s := range z.side.sides() {
				g.zones = append(g.zones, Zone{Level: z.level, Side: s})
			}
			out = append(out, g)
			continue
		}
		if s, ok := it.get(kindSide); ok {
			if len(cur.levels) > 0 && cur.sides != NoSide {
				flush()
			}
			touch(i)
			cur.addSide(s.side)
		}
		if l, ok := it.get(kindLevel); ok {
			if cur.levelFirst && cur.sides != NoSide && len(cur.levels) > 0 {
				flush()
			}
			if cur.empty() {
				cur.levelFirst = true
			}
			touch(i)
			cur.addLevel(l.level)
		}
		if it.is(kindLungword) && cur.first >= 0 {
			cur.last = i
		}
	}
	flush()
	return out
}

// attach decides which noun each group describes: the nearest target
// finding or the nearest other noun (effusion, tube, heart...), the finding
// winning a tie.
func attach(its []item, gs []group) {
	for k := range gs {
		g := &gs[k]
		g.target, g.other = -1, -1
		dt, do := len(its)+1, len(its)+1
		for j := range its {
			d := 0
			switch {
			case j < g.first:
				d = g.first - j
			case j > g.last:
				d = j - g.last
			default:
				continue
			}
			if its[j].is(kindFinding) && d < dt {
				dt, g.target = d, j
			}
			if its[j].is(kindOther) && d < do {
				do, g.other = d, j
			}
		}
		if g.target >= 0 && g.other >= 0 && do < dt {
			g.target = -1
		}
	}
}

// resolveSides gives a level-only group ("the lower zones") the side of the
// nearest group before it in the sentence, else of a side-only group after
// it ("... in the lower zones bilaterally" is one group already; "bilateral
// opacities in the lower zones" is not). A side-only group that gave its
// side away no longer means its whole lung; one that did not does.
func resolveSides(gs []group) {
	for k := range gs {
		g := &gs[k]
		if g.sides != NoSide || len(g.zones) > 0 || len(g.levels) == 0 {
			continue
		}
		for p := k - 1; p >= 0 && g.sides == NoSide; p-- {
			switch {
			case gs[p].sides != NoSide:
				g.sides = gs[p].sides
				if len(gs[p].levels) == 0 {
					gs[p].consumed = true
				}
			case len(gs[p].zones) > 0:
				g.sides = zoneSides(gs[p].zones)
			}
		}
		for n := k + 1; n < len(gs) && g.sides == NoSide; n++ {
			if gs[n].sides != NoSide && len(gs[n].levels) == 0 && len(gs[n].zones) == 0 {
				g.sides = gs[n].sides
				gs[n].consumed = true
			}
		}
		if g.sides == NoSide {
			g.noSide = "no side stated"
		}
	}
	// A side-only group whose sides the sentence's other places already
	// name is a summary ("Bilateral pneumonia, ... lower left lung and upper
	// right lung"), not a whole lung.
	for k := range gs {
		g := &gs[k]
		if g.sides == NoSide || len(g.levels) > 0 || len(g.zones) > 0 || g.consumed {
			continue
		}
		covered := true
		for _, s := range g.sides.sides() {
			covered = covered && namedElsewhere(gs, k, s)
		}
		g.consumed = covered
		g.wholeLung = !covered
	}
}

// namedElsewhere reports whether a group other than gs[k] names a zone of
// side s.
func namedElsewhere(gs []group, k int, s Side) bool {
	for i := range gs {
		if i == k || (len(gs[i].levels) == 0 && len(gs[i].zones) == 0) {
			continue
		}
		for _, z := range gs[i].place() {
			if z.Side == s {
				return true
			}
		}
	}
	return false
}

func zoneSides(zs []Zone) Side {
	s := NoSide
	for _, z := range zs {
		switch {
		case s == NoSide:
			s = z.Side
		case s != z.Side:
			s = Both
		}
	}
	return s
}
