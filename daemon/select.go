package daemon

import (
	"tmcad/config"
	"tmcad/dicomio"
)

// Selector maps the configuration's selection rules onto dicomio's; with
// no select.modalities, the model's modalities are the ones selected. Both
// `tmcad run` and `tmcad process` decide with it.
func Selector(cfg *config.Config, modelModalities []string) dicomio.Selector {
	mods := cfg.Select.Modalities
	if len(mods) == 0 {
		mods = modelModalities
	}
	return dicomio.Selector{
		Modalities:     mods,
		BodyParts:      cfg.Select.BodyParts,
		SkipImageTypes: cfg.Select.SkipImageTypes,
		MinSlices:      cfg.Select.MinSlices,
	}
}
