"""Draws the soak's chart from the chaos test's samples (CHAOS_SAMPLES).

usage: soak_chart.py SAMPLES_CSV OUT_PNG
The CSV has `seconds,process,rss_kib,fds` lines, one per live process per
sample (allot instances are named c<slot>-g<generation>: each SIGKILL
starts a new generation in the victim's slot). Draws resident memory (MiB)
and open file descriptors over time, allot instances in one colour per
slot, nats-server in black, and prints, for allot and nats-server, the
peak in the first and in the last fifth of the run: flat means the last
is not above the first by more than the noise.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out):
    series = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            series[row["process"]].append(
                (float(row["seconds"]), int(row["rss_kib"]) / 1024, int(row["fds"]))
            )
    end = max(t for points in series.values() for t, _, _ in points)
    fig, (rss, fds) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for name, points in sorted(series.items()):
        ts = [p[0] / 60 for p in points]
        if name == "nats-server":
            style = {"color": "black", "label": "nats-server"}
        else:
            slot = int(name[1:].split("-")[0])
            style = {"color": colours[slot % 3], "alpha": 0.8}
            if name.endswith("-g0"):
                style["label"] = f"allot, slot {slot}"
        rss.plot(ts, [p[1] for p in points], linewidth=1, **style)
        fds.plot(ts, [p[2] for p in points], linewidth=1, **style)
    rss.set_ylabel("resident memory, MiB")
    fds.set_ylabel("open file descriptors")
    fds.set_xlabel("minutes into the soak (one SIGKILL a minute)")
    rss.legend(loc="upper left", fontsize=8)
    rss.set_title("allot soak: every process's memory and descriptors")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    fifth = end / 5
    for who in ("allot", "nats-server"):
        pick = [
            p
            for name, points in series.items()
            if (name == "nats-server") == (who == "nats-server")
            for p in points
        ]
        first = [p for p in pick if p[0] <= fifth]
        last = [p for p in pick if p[0] >= end - fifth]
        if first and last:
            print(
                f"{who}: peak RSS {max(p[1] for p in first):.0f} MiB in the first fifth, "
                f"{max(p[1] for p in last):.0f} MiB in the last; "
                f"peak fds {max(p[2] for p in first)} then {max(p[2] for p in last)}"
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
