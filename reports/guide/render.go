package guide

import "strings"

var numberWords = []string{"zero", "one", "two", "three", "four", "five", "six"}

// renderQaTa renders zones (in the model's order) in QaTa-COV19's form:
// "Bilateral pulmonary infection, two infected areas, middle right lung
// and lower left lung." It is tmca.report_text.guide_text, proven equal by
// the shared vectors.
func renderQaTa(zs []Zone) string {
	if len(zs) == 0 {
		return ""
	}
	lateral := "Unilateral"
	if zoneSides(zs) == Both {
		lateral = "Bilateral"
	}
	noun := "infected areas"
	if len(zs) == 1 {
		noun = "infected area"
	}
	places := make([]string, len(zs))
	for i, z := range zs {
		places[i] = z.Level.String() + " " + z.Side.String() + " lung"
	}
	return lateral + " pulmonary infection, " + numberWords[len(zs)] + " " + noun + ", " + joinList(places) + "."
}

// renderMosMed renders a side in MosMedData+'s form, with the category's
// involvement phrase when the report states one. It is
// tmca.report_text.ct_guide_text.
func renderMosMed(s Side, category string) string {
	where := "the " + s.String() + " lung"
	if s == Both {
		where = "both lungs"
	}
	phrase := map[string]string{
		"CT-1": "involvement under 25%", "CT-2": "involvement 25-50%",
		"CT-3": "involvement 50-75%", "CT-4": "involvement over 75%",
	}[category]
	if phrase == "" {
		return "Ground-glass opacities in " + where + "."
	}
	return "Ground-glass opacities in " + where + ", " + category + ", " + phrase + "."
}

// joinList joins "a", "a and b", "a, b and c".
func joinList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}
