"""Draws the bench charts from allot-bench's results.json.

usage: bench_charts.py RESULTS_JSON OUT_DIR
Writes OUT_DIR/throughput.png (decided orders/s by scenario and system,
log scale) and OUT_DIR/latency.png (allot's open-loop latency percentiles
by scenario, admission and final decision).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rate(run):
    t = run.get("throughput") if run else None
    return t["per_s"] if t else 0.0


def throughput_chart(results, path):
    scenarios = [s["scenario"]["name"] for s in results["scenarios"]]
    systems = {"allot": [], "raw JetStream": []}
    for s in results["scenarios"]:
        systems["allot"].append(rate(s["allot_max"]))
        systems["raw JetStream"].append(rate(s.get("raw")))
        for b in s["stores"]:
            systems.setdefault(b["system"], []).append(rate(b))
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    width = 0.8 / len(systems)
    for i, (name, values) in enumerate(systems.items()):
        xs = [j + i * width for j in range(len(values))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, labels=[f"{v/1000:.1f}k" if v else "fail" for v in values],
                     fontsize=7, padding=2)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(scenarios))])
    ax.set_xticklabels(scenarios)
    ax.set_yscale("log")
    ax.set_ylabel("decided orders/s (log scale)")
    ax.set_title(f"Throughput by scenario and system ({results['date']}, "
                 f"{results['scenarios'][0]['scenario']['orders']:,} orders each)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def latency_chart(results, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), dpi=110, sharey=True)
    labels = ["p50", "p99", "p99.9"]
    for ax, kind, title in zip(axes, ["admission", "final_decision"],
                               ["first durable decision", "final durable decision"]):
        runs = [(s["scenario"]["name"], s.get("allot_open")) for s in results["scenarios"]]
        runs = [(n, r) for n, r in runs if r and r.get(kind)]
        width = 0.8 / max(len(runs), 1)
        for i, (name, run) in enumerate(runs):
            l = run[kind]
            values = [l["p50_ms"], l["p99_ms"], l["p999_ms"]]
            bars = ax.bar([j + i * width for j in range(3)], values, width,
                          label=f"{name} @ {run['target_rate']:.0f}/s")
            ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
        ax.axhline(10, color="red", linestyle="--", linewidth=1, label="10 ms target (p99)")
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(3)])
        ax.set_xticklabels(labels)
        ax.set_title(f"allot open loop: {title}")
        ax.set_yscale("log")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("ms from intended send time (log scale)")
    fig.tight_layout()
    fig.savefig(path)


def main():
    results = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    throughput_chart(results, f"{out}/throughput.png")
    latency_chart(results, f"{out}/latency.png")


if __name__ == "__main__":
    main()
