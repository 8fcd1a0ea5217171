package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"tmcad/config"
	"tmcad/daemon/pipeline"
	"tmcad/reports"
	"tmcad/reports/guide"
	"tmcad/segment"
)

func runExplainReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("explain-report", "FILE [--model DIR] [--modality CR] [--config FILE]",
		"Shows how a report becomes the model's guide text: each sentence, kept or dropped and why,\n"+
			"the guide text and its tokens. FILE is a report in any format tmcad reads (.txt, .json,\n"+
			".hl7, DICOM SR). It prints the report's words: run it on your own screen, not into logs.", stderr)
	cfgPath := fs.String("config", "", "configuration file (its reports.sections and model.dir)")
	model := fs.String("model", "", "model folder (overrides model.dir)")
	modality := fs.String("modality", "CR", "modality of the series the report guides (the model's form depends on it)")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	cfg.Model.Dir = modelDir(*model, *cfgPath != "", cfg.Model.Dir)
	m, err := segment.LoadManifest(cfg.Model.Dir)
	if err != nil {
		return err
	}
	if err := pipeline.CheckGuideForms(m); err != nil {
		return err
	}
	vocab, err := reports.LoadVocab(m.Path(m.Tokenizer.Vocab))
	if err != nil {
		return fmt.Errorf("model %s: %w", m.ID(), err)
	}
	tok, err := reports.NewTokenizer(vocab, m.Tokenizer.LowerCase, m.Tokenizer.StripAccents, m.Tokenizer.MaxLength)
	if err != nil {
		return fmt.Errorf("model %s: %w", m.ID(), err)
	}
	rd, err := reports.NewReader(reportOptions(cfg))
	if err != nil {
		return err
	}
	reps, err := rd.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	mod := strings.ToUpper(*modality)
	for i, r := range reps {
		if len(reps) > 1 {
			fmt.Fprintf(stdout, "report %d of %d (%s, %s)\n", i+1, len(reps), r.Format, r.Status)
		}
		res := guide.Build(r.Text, pipeline.GuideOptions(cfg.Reports.Sections, m, tok, mod))
		printExplanation(stdout, r.Text, res, tok, cfg, m, mod)
	}
	return nil
}

// printExplanation writes one report's explanation.
func printExplanation(w io.Writer, report string, res guide.Result, tok *reports.Tokenizer, cfg *config.Config, m *segment.Manifest, modality string) {
	if res.Rule == guide.RuleSections {
		fmt.Fprintf(w, "model %s, form %s for %s: the model reads the sections' text as it is\n", m.ID(), m.GuideForm(modality), modality)
	} else {
		fmt.Fprintf(w, "model %s, form %s for %s; sections read: %s\n\n", m.ID(), m.GuideForm(modality), modality, sectionList(res.Sections))
		printStatements(w, res)
	}
	fmt.Fprintf(w, "\nrule:       %s\n", res.Summary())
	if len(res.Omitted) > 0 {
		fmt.Fprintf(w, "omitted:    %s (over the model's %d zones or its token budget)\n", zoneList(res.Omitted), maxZones(m))
	}
	text := res.Text
	if !res.Described() {
		if cfg.Reports.NoTarget == "run" {
			text = reports.ExtractSections(report, cfg.Reports.Sections)
			fmt.Fprintf(w, "outcome:    no target described; reports.no_target = run: the model reads the sections' text\n")
		} else {
			fmt.Fprintf(w, "outcome:    no target described; reports.no_target = record: the model does not run")
			if cfg.SEG.WriteWhenEmpty {
				fmt.Fprintf(w, " (an empty SEG is written: seg.write_when_empty)")
			}
			fmt.Fprintln(w)
			return
		}
	}
	fmt.Fprintf(w, "guide text: %s\n", text)
	toks := tok.Tokenize(text)
	fmt.Fprintf(w, "tokens:     %d of %d (with [CLS] and [SEP]): %s\n", len(toks)+2, tok.MaxLen(), strings.Join(toks, " "))
}

// printStatements writes the table of sentences and their outcomes.
func printStatements(w io.Writer, res guide.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tOUTCOME\tSENTENCE\tWHY")
	for _, s := range res.Statements {
		outcome, why := "dropped", strings.Join(s.Reasons, "; ")
		if s.Kept {
			outcome = "kept"
			why = "target at " + zoneList(s.Zones)
			if s.Hedged {
				why += " (hedged)"
			}
			if len(s.Reasons) > 0 {
				why += "; also " + strings.Join(s.Reasons, "; ")
			}
		}
		if len(s.Typos) > 0 {
			why += "; read " + strings.Join(s.Typos, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", orDash(s.Section), outcome, s.Text, why)
	}
	tw.Flush()
}
func sectionList(ss []string) string {
	var out []string
	for _, s := range ss {
		if s == "" {
			s = "(text outside any section)"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func zoneList(zs []guide.Zone) string {
	parts := make([]string, len(zs))
	for i, z := range zs {
		parts[i] = z.String()
	}
	return strings.Join(parts, ", ")
}

func maxZones(m *segment.Manifest) int {
	if m.Guide == nil || m.Guide.MaxZones == 0 {
		return 3
	}
	return m.Guide.MaxZones
}
