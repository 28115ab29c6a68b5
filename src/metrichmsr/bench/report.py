"""Benchmark tables and plots from scored rows (``bench.score.score_image``)."""

from __future__ import annotations

import csv
import hashlib
import statistics
import sys
from pathlib import Path
from typing import Callable, Sequence

from metrichmsr.errors import InputError

FOV_BUCKETS_DEG = (20, 40, 60, 80, 100, 121)
DISTANCE_BUCKETS_M = (1, 3, 6, 12, 31)
OFF_AXIS_BUCKETS_DEG = (0, 10, 20, 30, 45, 90)

#: (column title, row -> value or None, aggregate, format)
_COLUMNS: tuple[tuple[str, Callable[[dict], float | None], Callable, str], ...] = (
    ("median rel. depth err (%)", lambda r: abs(r["depth_ratio_err"]) * 100, statistics.median, "{:.1f}"),
    ("mean rel. depth err (%)", lambda r: abs(r["depth_ratio_err"]) * 100, statistics.mean, "{:.1f}"),
    ("median root err (m)", lambda r: r["root_err_m"], statistics.median, "{:.2f}"),
    ("height MAE (cm)", lambda r: abs(r["height_err_m"]) * 100, statistics.mean, "{:.1f}"),
    ("adult height MAE (cm)", lambda r: abs(r["height_err_m"]) * 100 if r["adult"] else None, statistics.mean, "{:.1f}"),
    ("MPJPE (mm)", lambda r: r["mpjpe_mm"], statistics.mean, "{:.0f}"),
    ("PA-MPJPE (mm)", lambda r: r["pa_mpjpe_mm"], statistics.mean, "{:.0f}"),
    ("PVE (mm)", lambda r: r["pve_mm"], statistics.mean, "{:.0f}"),
)


def exit_status(prog: str, run: Callable[[], int]) -> int:
    """A benchmark script's exit status: ``run()``'s; 2 with one line on stderr for bad input
    (``InputError``), 1 for a step that failed (``RuntimeError``)."""
    try:
        return run()
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1


def weights_label(path: str | Path) -> str:
    """Which network a report's numbers come from: file name and the start of its md5."""
    return f"{Path(path).name} (md5 {hashlib.md5(Path(path).read_bytes()).hexdigest()[:8]})"


def _aggregate(rows: Sequence[dict], value: Callable[[dict], float | None], reduce: Callable) -> float | None:
    values = [v for v in (value(r) for r in rows if r["found"]) if v is not None]
    return reduce(values) if values else None


def median_rel_depth_err(rows: Sequence[dict]) -> float | None:
    """Median |z_pred / z_true - 1| over found people (a fraction), None if nobody was found."""
    return _aggregate(rows, lambda r: abs(r["depth_ratio_err"]), statistics.median)


def _bucket_label(low: float, high: float, unit: str) -> str:
    return f"{low:g}-{high:g} {unit}"


def buckets(rows: Sequence[dict], key: str, edges: Sequence[float], unit: str) -> dict[str, list[dict]]:
    """Rows split by ``key`` into [edges[i], edges[i + 1]) buckets, labelled, empty ones dropped."""
    out = {}
    for low, high in zip(edges[:-1], edges[1:]):
        inside = [r for r in rows if low <= r[key] < high]
        if inside:
            out[_bucket_label(low, high, unit)] = inside
    return out


def markdown_table(rows: Sequence[dict], methods: Sequence[str], seconds: dict[str, float]) -> str:
    """One markdown table: a block of splits (all, adults, children, FOV, distance, off-axis) per method."""
    header = ["method", "split", "people", "recall", *(c[0] for c in _COLUMNS), "s / image"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        splits = {"all": mine, "adults": [r for r in mine if r["adult"]], "children (<18 y)": [r for r in mine if not r["adult"]]}
        splits = {name: split for name, split in splits.items() if split}
        splits.update(buckets(mine, "fov_deg", FOV_BUCKETS_DEG, "deg FOV"))
        splits.update(buckets(mine, "distance_m", DISTANCE_BUCKETS_M, "m"))
        splits.update(buckets(mine, "off_axis_deg", OFF_AXIS_BUCKETS_DEG, "deg off-axis"))
        for name, split in splits.items():
            recall = sum(r["found"] for r in split) / len(split)
            cells = []
            for _, value, reduce, fmt in _COLUMNS:
                result = _aggregate(split, value, reduce)
                cells.append("-" if result is None else fmt.format(result))
            timing = f"{seconds[method]:.2f}" if name == "all" else ""
            lines.append(f"| {method} | {name} | {len(split)} | {recall:.2f} | " + " | ".join(cells) + f" | {timing} |")
    return "\n".join(lines) + "\n"


def focal_table(rows: Sequence[dict], methods: Sequence[str]) -> str:
    """Per method and FOV bucket: images, the share whose focal length was estimated, the
    median |focal error| over all of them and over the estimated ones, and the median
    relative depth error of the people (``bench --unknown-camera``)."""
    header = [
        "method",
        "split",
        "images",
        "estimated",
        "median focal err (%)",
        "estimated: median focal err (%)",
        "median rel. depth err (%)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        for name, split in {"all": mine, **buckets(mine, "fov_deg", FOV_BUCKETS_DEG, "deg FOV")}.items():
            images = {r["image"]: r for r in split}.values()  # the focal length is one per image
            estimated = [abs(r["focal_ratio_err"]) * 100 for r in images if r["camera_source"] == "estimated"]
            focal = statistics.median(abs(r["focal_ratio_err"]) * 100 for r in images)
            depth = median_rel_depth_err(split)
            cells = [
                method,
                name,
                str(len(images)),
                f"{len(estimated) / len(images):.2f}",
                f"{focal:.1f}",
                f"{statistics.median(estimated):.1f}" if estimated else "-",
                "-" if depth is None else f"{depth * 100:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """All rows, one per (method, image, ground-truth person); unmatched people have empty errors."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_plots(rows: Sequence[dict], methods: Sequence[str], out_dir: Path) -> list[Path]:
    """PNG plots of median relative root-depth error vs FOV, distance and off-axis angle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, edges, unit, title in (
        ("fov_deg", FOV_BUCKETS_DEG, "deg", "horizontal field of view (deg)"),
        ("distance_m", DISTANCE_BUCKETS_M, "m", "distance to the camera (m)"),
        ("off_axis_deg", OFF_AXIS_BUCKETS_DEG, "deg", "angle of the person from the optical axis (deg)"),
    ):
        figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
        for method in methods:
            split = buckets([r for r in rows if r["method"] == method], key, edges, unit)
            centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:]) if _bucket_label(low, high, unit) in split]
            errors = [median_rel_depth_err(s) for s in split.values()]
            points = [(c, e * 100) for c, e in zip(centres, errors) if e is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=method)
        axis.set_xlabel(title)
        axis.set_ylabel("median relative root-depth error (%)")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
        figure.tight_layout()
        path = out_dir / f"depth_error_vs_{key.rsplit('_', 1)[0]}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths
