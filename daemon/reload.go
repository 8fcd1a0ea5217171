package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"tmcad/config"
)

// reloadable are the keys SIGHUP applies at once; every other changed key
// needs a restart. A key is a "section.key" TOML name; "section.*" covers a
// whole section.
var reloadable = map[string]bool{
	"watch.stable_after":         true,
	"watch.rescan_every":         true,
	"watch.size_stable_for":      true,
	"watch.incomplete_wait":      true,
	"reports.wait":               true,
	"reports.required":           true,
	"archive.retry_max_interval": true,
	"limits.max_queued_jobs":     true,
	"limits.max_outbox":          true,
	"select.*":                   true,
	"retention.*":                true,
}

// Reload applies a new configuration: the reloadable keys take effect at
// once; it returns the applied keys and the changed keys that need a
// restart (which keep their old values until then). When the selection
// rules changed, the series they had skipped are judged again.
func (d *Daemon) Reload(next *config.Config) (applied, needRestart []string) {
	cur := d.config()
	changed := changedKeys(cur, next)
	merged := *cur
	mv, nv := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(next).Elem()
	for _, k := range changed {
		sec, key, _ := strings.Cut(k, ".")
		if !reloadable[k] && !reloadable[sec+".*"] {
			needRestart = append(needRestart, k)
			continue
		}
		applied = append(applied, k)
		si := fieldByTag(mv.Type(), sec)
		if si < 0 {
			continue
		}
		if key == "" {
			mv.Field(si).Set(nv.Field(si))
			continue
		}
		fi := fieldByTag(mv.Field(si).Type(), key)
		if fi >= 0 {
			mv.Field(si).Field(fi).Set(nv.Field(si).Field(fi))
		}
	}
	d.cfg.Store(&merged)
	if d.watcher != nil {
		d.watcher.SetTimings(merged.Watch.SizeStableFor.Duration, merged.Watch.RescanEvery.Duration)
	}
	if slices.ContainsFunc(applied, func(k string) bool { return strings.HasPrefix(k, "select.") }) {
		// Series skipped under the old rules are judged again under the
		// new ones, by the ready loop at its next round (after it has
		// taken the new configuration).
		d.reconsider.Store(true)
	}
	return applied, needRestart
}

// changedKeys lists the "section.key" names whose values differ.
func changedKeys(a, b *config.Config) []string {
	var out []string
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := av.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := tomlName(f)
		if tag == "" {
			continue
		}
		if f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeOf(config.Duration{}) {
			if !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
				out = append(out, tag)
			}
			continue
		}
		for j := 0; j < f.Type.NumField(); j++ {
			sf := f.Type.Field(j)
			st := tomlName(sf)
			if st == "" {
				continue
			}
			x, y := av.Field(i).Field(j).Interface(), bv.Field(i).Field(j).Interface()
			if !equalValue(x, y) {
				out = append(out, tag+"."+st)
			}
		}
	}
	sort.Strings(out)
	return out
}

// equalValue compares config values (durations by value, secrets by value).
func equalValue(x, y any) bool {
	switch a := x.(type) {
	case config.Duration:
		return a.Duration == y.(config.Duration).Duration
	case config.Secret:
		return a.Value == y.(config.Secret).Value
	}
	return reflect.DeepEqual(x, y)
}

func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

func fieldByTag(t reflect.Type, name string) int {
	for i := 0; i < t.NumField(); i++ {
		if tomlName(t.Field(i)) == name {
			return i
		}
	}
	return -1
}

// DescribeReload is the log line for a reload.
func DescribeReload(applied, needRestart []string) string {
	if len(applied) == 0 && len(needRestart) == 0 {
		return "configuration reloaded: nothing changed"
	}
	return fmt.Sprintf("configuration reloaded: applied [%s]; need a restart [%s]", strings.Join(applied, ", "), strings.Join(needRestart, ", "))
}
