"""How much of an adult's height HumanMoE reads: the weight behind ``--population adults``.

    metrichmsr synth --n 200 --seed 300000 -o out/synth-calib      # training-split seeds, not the benchmark's
    python -m metrichmsr.bench.adult_heights out/synth-calib        # ~6 min on a 2-core CPU

Runs ``recover``'s people stages on every render (detection, HumanMoE, bodies posed onto the
landmarks, parts read as far dropped), before any floor step, and matches each person to the
truth (box IoU >= 0.5, people under 60 px not scored). Then, over the true adults (18 years
and older), the least-squares slope of the true on the read log-height, each taken about the
adults' median (``population.ADULT_MEDIAN_HEIGHT_M``): the share of a read's deviation from
the median that is worth keeping (``population.ADULT_READ_WEIGHT``). And the median depth
error the people would have with their heights pulled toward the median by weights 1 (as
read), 0.5, 0.25 and 0 (the median for all), among the true adults and among the people the
network reads as adults (whom ``--population all`` could have pulled, children among them).
Prints the table and a summary line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from metrichmsr.population import ADULT_MEDIAN_HEIGHT_M, adult_heights_m

WEIGHTS = (1.0, 0.5, 0.25, 0.0)


def read_people(samples: list[Path], progress: bool = True) -> list[dict]:
    """One row per scored, found person of the rendered ``samples``: true and read standing
    height (m) and age (Anny's phenotype value), box height (px) and the read's depth error
    (z_read / z_true - 1)."""
    from tqdm import tqdm

    from metrichmsr.bench.score import ScoreConfig, match_boxes
    from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES
    from metrichmsr.pipeline import Recoverer, without_parts_read_as_far
    from metrichmsr.synth.dataset import load_sample

    age, scoring = PHENOTYPE_NAMES.index("age"), ScoreConfig()  # scored and matched as `metrichmsr bench` does
    rows = []
    with Recoverer(depth="none") as recoverer:
        for path in tqdm(samples, desc="adult_heights", unit="image", disable=not progress):
            scene = load_sample(path)
            found = [o for o in recoverer.detect(scene.image) if o.score > 0]
            people = without_parts_read_as_far(recoverer.fit_people(found, scene.K, image=scene.image))
            if not people:
                continue
            height, width = scene.image.shape[:2]
            full = np.clip(scene.boxes_full, 0, [width - 1, height - 1, width - 1, height - 1])
            for truth, k in match_boxes(np.stack([p.bbox for p in people]), full, scoring.min_iou).items():
                box_px = float(scene.boxes[truth, 3] - scene.boxes[truth, 1])
                if box_px < scoring.min_box_px:
                    continue
                person = people[k]
                rows.append(
                    {
                        "image": path.stem,
                        "true_height_m": float(scene.height_m[truth]),
                        "true_adult": bool(scene.params.phenotype[truth, age] >= ADULT_AGE),
                        "read_height_m": float(person.height_m),
                        "read_adult": bool(person.phenotype[age] >= ADULT_AGE),
                        "box_px": box_px,
                        "depth_err": float(person.translation[2] / float(scene.params.translation[truth, 2]) - 1),
                    }
                )
    return rows


def read_weight(true_m: np.ndarray, read_m: np.ndarray) -> float:
    """Least-squares slope of log(true / median) on log(read / median): the share of a read's
    log-deviation from the adults' median height that predicts the truth."""
    x = np.log(np.asarray(read_m) / ADULT_MEDIAN_HEIGHT_M)
    y = np.log(np.asarray(true_m) / ADULT_MEDIAN_HEIGHT_M)
    x_centred = x - x.mean()
    return float((x_centred * (y - y.mean())).sum() / (x_centred**2).sum())


def pulled_depth_errors(rows: list[dict], weight: float) -> np.ndarray:
    """(N,) depth errors of ``rows`` had each person been scaled about the camera to the height
    ``population.adult_heights_m`` gives their read with ``weight``."""
    read = np.array([r["read_height_m"] for r in rows])
    scale = adult_heights_m(read, weight) / read
    return (1 + np.array([r["depth_err"] for r in rows])) * scale - 1


def report(rows: list[dict]) -> str:
    """The table (one row per group of people) and the summary line."""
    groups = {
        "true adults": [r for r in rows if r["true_adult"]],
        "read as adults": [r for r in rows if r["read_adult"]],
    }
    header = "| people | n | slope of true on read log-height | " + " | ".join(
        f"median depth error, weight {w:g}" for w in WEIGHTS
    )
    lines = [header + " |", "|" + " --- |" * (3 + len(WEIGHTS))]
    slopes = {}
    for name, group in groups.items():
        if len(group) < 3:
            lines.append(f"| {name} | {len(group)} | - |" + " - |" * len(WEIGHTS))
            continue
        slopes[name] = read_weight([r["true_height_m"] for r in group], [r["read_height_m"] for r in group])
        errors = [f"{100 * np.median(np.abs(pulled_depth_errors(group, w))):.1f}%" for w in WEIGHTS]
        lines.append(f"| {name} | {len(group)} | {slopes[name]:.2f} | " + " | ".join(errors) + " |")
    summary = "summary: " + ", ".join(f"{name}: slope {s:.2f}" for name, s in slopes.items())
    return "\n".join(lines) + "\n\n" + summary + f" ({len(rows)} people)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="metrichmsr.bench.adult_heights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", type=Path, help="folder written by `metrichmsr synth` (training-split seeds)")
    args = parser.parse_args(argv)
    from metrichmsr.errors import InputError
    from metrichmsr.synth.dataset import list_samples

    try:
        samples = list_samples(args.input)
    except InputError as error:
        parser.exit(2, f"metrichmsr.bench.adult_heights: error: {error}\n")
    print(report(read_people(samples)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
