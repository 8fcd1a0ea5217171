"""Plot one bench/load run: latency per series over its arrival time (split
at "series stable"), and the daemon's queue, outbox and memory over time.

Usage: plot.py RUN.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        run = json.load(f)
    cfg, summ = run["config"], run["summary"]
    series = [s for s in run["series"] if s.get("stored_s") is not None and s.get("arrive_last_s") is not None]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), constrained_layout=True)

    for kind, marker in (("CR", "o"), ("CT", "s")):
        pts = [s for s in series if s["kind"] == kind]
        if not pts:
            continue
        x = [s["arrive_last_s"] for s in pts]
        total = [s["stored_s"] - s["arrive_last_s"] for s in pts]
        after = [s["stored_s"] - s["stable_s"] if s.get("stable_s") is not None else float("nan") for s in pts]
        ax1.scatter(x, total, s=8, marker=marker, label=f"{kind}: last instance → SEG stored")
        ax1.scatter(x, after, s=8, marker=marker, label=f"{kind}: stable → SEG stored")
    ax1.set_xlabel("arrival of the series' last instance (s since the first arrival)")
    ax1.set_ylabel("latency (s)")
    ax1.set_title(
        f"{cfg['name']}: {summ['Done']} series ({summ['CR']} CR + {summ['CT']} CT, CT {cfg['ct_slices']}×{cfg['ct_size']}²), "
        f"{cfg['db']}, {cfg['mode']}" + (f" {cfg.get('rate_per_hour', 0):.0f}/h" if cfg["mode"] == "steady" else "")
        + f"; {summ['StudiesPerHour']:.0f} studies/h"
    )
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, markerscale=2)

    smp = run["samples"]
    t = [s["t"] for s in smp]

    def jobs(s, *states):
        return sum(s["jobs"].get(k, 0) for k in states)

    ax2.plot(t, [jobs(s, "available", "pending", "scheduled", "retryable") for s in smp], label="process jobs waiting")
    ax2.plot(t, [jobs(s, "running") for s in smp], label="process jobs running")
    ax2.plot(t, [s["outbox"] for s in smp], label="SEGs in the outbox (made, not yet stored)")
    ax2.set_xlabel("time (s since the first arrival)")
    ax2.set_ylabel("count")
    ax2.grid(alpha=0.3)
    ax3 = ax2.twinx()
    ax3.plot(t, [s["rss_kib"] / 1024 for s in smp], color="grey", linestyle="--", label="RSS (MiB, right)")
    ax3.set_ylabel("RSS (MiB)")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
