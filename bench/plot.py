"""The manual's benchmark plots, drawn from ``bench/build_vs_load.py --json`` reports, one report per model.

    python bench/plot.py [REPORT.json ...] [--out docs/img]

Reports default to ``bench/results/*.json``. Two plots, each against the model's parameter bytes: the wall
time of the mapped build, the filled build and real loading (``from_pretrained``), and the resident memory
each adds over the process's baseline. The x axis is the model's size; the points are whatever models the
reports measured, so a plot shows only what was run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "docs" / "img"
SERIES = {  # case in the report -> label and style
    "build": ("dummy build, mapped storage (the default on CPU)", "o-"),
    "build_filled": ("dummy build, filled storage", "s-"),
    "real_load": ("real load: from_pretrained, page cache warm", "^-"),
}
GB = 1e9


def model_name(report: dict) -> str:
    return Path(report["config"]).name + (" (shrunk)" if report.get("shrink") else "")


def draw(reports: list[dict], key: str, scale: float, ylabel: str, title: str, path: Path) -> None:
    reports = sorted(reports, key=lambda report: report["model"]["nbytes"])
    figure, axes = plt.subplots(figsize=(7.5, 5), dpi=120)
    for case, (label, style) in SERIES.items():
        points = [(report["model"]["nbytes"] / GB, report["cases"][case][key] * scale) for report in reports if case in report["cases"]]
        if points:
            axes.plot(*zip(*points, strict=True), style, label=label)
    for report in reports:
        x = report["model"]["nbytes"] / GB
        axes.axvline(x, color="lightgray", linestyle=":", zorder=0)
        axes.annotate(
            model_name(report),
            (x, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-3, -4),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
            color="dimgray",
        )
    axes.set_yscale("log")
    axes.set_ylim(top=axes.get_ylim()[1] * 10)  # headroom for the models' names
    axes.set_xlabel("model size: parameter bytes, GB (bfloat16)")
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=11)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    loads = [report["machine"]["load_avg_start"][0] for report in reports]
    machine = reports[0]["machine"]
    figure.text(
        0.01,
        0.01,
        f"{machine['nproc']} CPUs, {machine['ram_gib']} GiB RAM, shared; load average at start "
        f"{min(loads):.1f} to {max(loads):.1f}; one run per point",
        fontsize=7,
        color="gray",
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))  # room for the machine's line
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path, help="build_vs_load.py --json reports (default: bench/results/*.json)")
    parser.add_argument("--out", type=Path, default=OUT, help="directory of the PNG files (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = args.reports or sorted(RESULTS.glob("*.json"))
    if not paths:
        raise SystemExit(f"error: no reports given and none in {RESULTS}: run bench/build_vs_load.py --json first")
    reports = [json.loads(path.read_text()) for path in paths]
    draw(reports, "wall_median_s", 1, "wall time, s (log)", "Getting a model: time against model size", args.out / "build-time.png")
    draw(
        reports,
        "rss_over_baseline_mb",
        2**20 / GB,
        "resident memory added, GB (log)",
        "Getting a model: memory against model size",
        args.out / "build-memory.png",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
