"""Draws the bench charts from allot-bench's results.json.

usage: bench_charts.py RESULTS_JSON OUT_DIR
Writes OUT_DIR/throughput.png (decided orders/s by scenario for every
system: allot at both durability settings, raw JetStream with per-message
and batched acks, PostgreSQL sync off/on, Redis everysec/always; bars are
medians over the repeats, whiskers min..max; log scale) and
OUT_DIR/latency.png (p50 and p99 open loop at 50% of each system's own
max, from each order's intended send time: admission for every system,
and allot's final decision as its own bars).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# One colour per system in both charts (allot's final decision: its colour, hatched).
KEYS = ["allot", "allot_always", "raw_ack", "raw_batch_ack",
        "pg_sync_off", "pg_sync_on", "redis_everysec", "redis_always",
        "allot_batch", "allot_always_batch"]


def colour(key):
    return plt.get_cmap("tab10")(KEYS.index(key) if key in KEYS else len(KEYS))


def spread(summary, field):
    """(median, low error, high error) of a summary field; None if absent."""
    s = summary.get(field) if summary else None
    if not s:
        return None
    return s["median"], s["median"] - s["min"], s["max"] - s["median"]


def series(results, field, final_field=None):
    """{(label, key): [spread per scenario]} over every system in any scenario."""
    out = {}
    names = [s["scenario"]["name"] for s in results["scenarios"]]
    for i, s in enumerate(results["scenarios"]):
        for system in s["systems"]:
            fields = [(system["label"], field)]
            if final_field and system["key"].startswith("allot"):
                fields.append((system["label"] + ", final", final_field))
            for label, f in fields:
                values = out.setdefault((label, system["key"]), [None] * len(names))
                values[i] = spread(system["summary"], f)
    return names, out


def bars(ax, names, systems, fmt):
    width = 0.84 / max(len(systems), 1)
    for i, ((label, key), values) in enumerate(systems.items()):
        xs = [j + i * width for j in range(len(names))]
        heights = [v[0] if v else 0 for v in values]
        errors = [[v[1] if v else 0 for v in values], [v[2] if v else 0 for v in values]]
        hatch = "//" if label.endswith(", final") else None
        drawn = ax.bar(xs, heights, width, yerr=errors, capsize=2, label=label, hatch=hatch,
                       color=colour(key), edgecolor="white" if hatch else None,
                       error_kw={"linewidth": 0.8})
        ax.bar_label(drawn, labels=[fmt(v[0]) if v else "—" for v in values],
                     fontsize=6, padding=2, rotation=90)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels(names)
    ax.set_yscale("log")
    ax.grid(axis="y", which="both", alpha=0.3)


def repeats(results):
    return results.get("settings", {}).get("repeats", 1)


def throughput_chart(results, path):
    names, systems = series(results, "per_s")
    fig, ax = plt.subplots(figsize=(12, 6), dpi=110)
    bars(ax, names, systems, lambda v: f"{v / 1000:.1f}k")
    ax.set_ylabel("decided orders/s (log scale)")
    ax.set_title(f"Maximum throughput by scenario and system ({results['date']}; "
                 f"median of {repeats(results)}, whiskers min..max)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)


def latency_chart(results, path):
    fig, axes = plt.subplots(2, 1, figsize=(12, 9), dpi=110, sharex=True)
    for ax, pct in zip(axes, ["p50", "p99"]):
        names, systems = series(results, f"admission_{pct}_ms", f"final_{pct}_ms")
        bars(ax, names, systems, lambda v: f"{v:.1f}")
        if pct == "p99":
            ax.axhline(10, color="red", linestyle="--", linewidth=1, label="10 ms target")
        ax.set_ylabel(f"{pct}, ms (log scale)")
        ax.set_title(f"{pct} open loop at 50% of each system's own max, "
                     "from the intended send time (median of repeats)")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path)


def main():
    with open(sys.argv[1]) as f:
        results = json.load(f)
    out = sys.argv[2]
    throughput_chart(results, f"{out}/throughput.png")
    latency_chart(results, f"{out}/latency.png")


if __name__ == "__main__":
    main()
