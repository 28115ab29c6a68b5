"""`metrichmsr bench DIR`: methods side by side on a synth folder -> table.md, results.csv, plots.

Methods (people are detected once per image; each method then recovers them its own way):

- ``full``: ``recover`` as it ships (HumanMoE, one pass) with the image's true intrinsics,
  every keypoint on its own ray and the box's ray map.
- ``fixed-fov``: the same pipeline told a fixed camera, 55 deg horizontal FOV with the
  principal point at the image centre, whatever the lens was (what a tool that ignores
  intrinsics assumes).
- ``box-only``: the CLIFF-style box encoding: each person is recovered as if their box sat
  on the optical axis, then moved to the box's place, with the focal length CLIFF assumes
  when it is unknown (the image diagonal in pixels). It knows the box's size and position,
  not the rays.
- ``fit-only`` and ``humanmoe+fit`` (not run by default): the metric fit alone, started from a
  typical adult (``recover`` before HumanMoE), and the fit started from HumanMoE's prediction
  (``recover --refine``).
- ``box-true-focal`` (not run by default): ``box-only`` told the true focal length. A crop is
  a principal-point shift of the image, so the box then carries the distance nearly as well
  as the rays; what it loses is the body's orientation off-centre (MPJPE).
- ``default-fov`` and ``estimated`` (``--unknown-camera``, with ``full``): K hidden from the
  method. ``default-fov`` is ``recover`` before it estimated cameras (60 deg, centred);
  ``estimated`` is ``recover`` without K today: the focal length the image's lines give
  (``scene.focal``), else the default.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from metrichmsr.bench.baselines import CameraModel, fit_people_variants
from metrichmsr.bench.report import (
    OFF_AXIS_BUCKETS_DEG,
    buckets,
    focal_table,
    markdown_table,
    median_rel_depth_err,
    weights_label,
    write_csv,
    write_plots,
)
from metrichmsr.bench.score import ScoreConfig, score_image
from metrichmsr.camera import DEFAULT_FOV_DEG, focal_from_fov
from metrichmsr.defaults import POPULATION

FIXED_FOV_DEG = 55.0
METHODS = ("full", "fixed-fov", "box-only", "box-true-focal", "fit-only", "humanmoe+fit", "default-fov", "estimated")
DEFAULT_METHODS = METHODS[:3]
UNKNOWN_CAMERA_METHODS = ("full", "default-fov", "estimated")
#: (HumanMoE, fit) stages of each method; the others run recover's default, HumanMoE alone.
_STAGES = {"fit-only": (False, True), "humanmoe+fit": (True, True)}
_DEFAULT_STAGES = (True, False)
MARKER = "table.md"


def method_camera(
    method: str, K: np.ndarray, size: tuple[int, int], estimated_K: np.ndarray | None = None
) -> tuple[np.ndarray, CameraModel]:
    """The (K (3, 3), camera model, ``bench.baselines``) a method fits with, given the image's
    true K, (W, H) and, for ``estimated``, the intrinsics ``recover`` estimates without K."""
    if method in ("full", "fit-only", "humanmoe+fit"):
        return K, "rays"
    if method == "box-true-focal":
        return K, "box"
    if method == "estimated":
        return estimated_K, "rays"
    width, height = size
    if method in ("fixed-fov", "box-only", "default-fov"):
        fov = {"fixed-fov": FIXED_FOV_DEG, "default-fov": DEFAULT_FOV_DEG}.get(method)
        f = focal_from_fov(fov, width) if fov else float(np.hypot(width, height))
        return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]]), "box" if method == "box-only" else "rays"
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def evaluate(
    recoverer,
    samples: Sequence[Path],
    methods: Sequence[str],
    config: ScoreConfig = ScoreConfig(),
    progress=True,
    camera_height_known: bool = False,
):
    """Score every method on every sample, each method's people standing on the floor they
    place (``Recoverer.stand_on_floor``) and parts read as far-away people dropped
    (``pipeline.without_parts_read_as_far``), as ``recover`` gives them.

    Returns (rows, mean seconds per image by method, scene rows): the scene rows
    (``bench.depth_bench.bench_scene``) measure the scene depth anchored on the people the
    ``full`` method recovered: the planar backend on the true floor, and the refinement of
    the true depth map corrupted in scale, shift and drift (seeded per image).
    ``camera_height_known``: give the floor step each scene's true camera height, as
    ``recover --camera-height`` does.
    """
    from tqdm import tqdm

    from metrichmsr.bench.depth_bench import bench_scene
    from metrichmsr.camera import resolve_intrinsics
    from metrichmsr.pipeline import without_parts_read_as_far
    from metrichmsr.scene.focal import camera_from_lines
    from metrichmsr.synth.dataset import load_sample

    faces = recoverer.body.faces.cpu().numpy()
    rows, seconds, scene_rows = [], {m: [] for m in methods}, []
    for path in tqdm(samples, desc="bench", unit="image", disable=not progress):
        scene = load_sample(path)
        size = (scene.image.shape[1], scene.image.shape[0])
        started = time.perf_counter()
        observations = [o for o in recoverer.detect(scene.image) if o.score > 0]
        detect_s = time.perf_counter() - started
        known_m = scene.floor.camera_height_m if camera_height_known else None
        estimated = None
        if "estimated" in methods:
            started = time.perf_counter()
            boxes = np.stack([o.bbox for o in observations]) if observations else None
            estimated = camera_from_lines(resolve_intrinsics(*size), scene.image, boxes)
            estimate_s = time.perf_counter() - started
        # Methods sharing stages run as one batched fit: each is charged the detection plus its share.
        for stages in dict.fromkeys(_STAGES.get(m, _DEFAULT_STAGES) for m in methods):
            group = [m for m in methods if _STAGES.get(m, _DEFAULT_STAGES) == stages]
            started = time.perf_counter()
            variants = [method_camera(m, scene.K, size, estimated.K if estimated else None) for m in group]
            results = fit_people_variants(
                recoverer, observations, variants, humanmoe=stages[0], refine=stages[1], image=scene.image
            )
            fit_s = (time.perf_counter() - started) / len(group)
            for (method, people), (K, _) in zip(zip(group, results), variants):
                started = time.perf_counter()
                people, floor, contacts = recoverer.stand_on_floor(without_parts_read_as_far(people), scene.image, K, known_m)
                seconds[method].append(
                    detect_s + fit_s + time.perf_counter() - started + (estimate_s if method == "estimated" else 0.0)
                )
                source = estimated.source if method == "estimated" else ("true" if K is scene.K else "default")
                focal_err = float(K[0, 0] / scene.K[0, 0] - 1.0)
                for row in score_image(scene, people, config, method=method, image=path.stem):
                    rows.append({**row, "camera_source": source, "focal_ratio_err": focal_err})
                if method == "full" and people:
                    vertices, joints = np.stack([p.vertices for p in people]), np.stack([p.joints3d for p in people])
                    rng = np.random.default_rng(int(path.stem) if path.stem.isdigit() else 0)
                    scene_rows += bench_scene(scene, vertices, joints, faces, recoverer.renderer, rng, (floor, contacts))
    return rows, {m: statistics.mean(s) for m, s in seconds.items()}, scene_rows


def summary_line(rows: Sequence[dict], methods: Sequence[str]) -> str:
    """Median relative root-depth error per method, overall and for the widest FOVs and the most off-axis people."""
    parts = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        wide = [r for r in mine if r["fov_deg"] >= 90]
        edge = [r for split in list(buckets(mine, "off_axis_deg", OFF_AXIS_BUCKETS_DEG, "deg").values())[-1:] for r in split]

        def pct(split):
            value = median_rel_depth_err(split)
            return "-" if value is None else f"{value * 100:.1f}%"

        parts.append(f"{method} {pct(mine)} (FOV>=90: {pct(wide)}, most off-axis: {pct(edge)})")
    found = [r for r in rows if r["method"] == methods[0]]
    recall = sum(r["found"] for r in found) / max(len(found), 1)
    return f"summary: median rel. root-depth error: {'; '.join(parts)}; recall {recall:.2f} over {len(found)} people"


def focal_summary(rows: Sequence[dict]) -> str:
    """One line: how often ``estimated`` found a focal length, and how right it was."""
    images = {r["image"]: r for r in rows if r["method"] == "estimated"}.values()
    found = [abs(r["focal_ratio_err"]) for r in images if r["camera_source"] == "estimated"]
    everyone = [abs(r["focal_ratio_err"]) for r in images]
    estimated_err = f"{statistics.median(found) * 100:.1f}%" if found else "-"
    return (
        f"focal: estimated on {len(found)} of {len(everyone)} images, median focal error {estimated_err} there, "
        f"{statistics.median(everyone) * 100:.1f}% over all images (the default elsewhere)"
    )


def run(
    directory: Path,
    out_dir: Path,
    methods: Sequence[str] = DEFAULT_METHODS,
    device: str = "auto",
    limit: int | None = None,
    weights: str | Path | None = None,
    camera_height_known: bool = False,
    overwrite: bool = False,
    population: str = POPULATION,
) -> str:
    """Benchmark ``methods`` on the synth folder ``directory``; writes ``out_dir`` atomically, returns the report.

    ``weights``: the HumanMoE network file the methods use (default: the shipped one).
    ``camera_height_known``: the floor step is given each scene's true camera height.
    ``overwrite``: replace an earlier report in ``out_dir`` (``metrichmsr._outputs.check_output``).
    ``population``: who the methods take the people to be (``metrichmsr.population``).
    """
    from metrichmsr._outputs import staged_output
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS
    from metrichmsr.pipeline import Recoverer
    from metrichmsr.synth.dataset import list_samples

    samples = list_samples(directory)[:limit]
    from metrichmsr.bench import depth_bench

    weights = Path(weights or HUMANMOE_WEIGHTS)
    with Recoverer(device=device, weights=weights, population=population) as recoverer:
        rows, seconds, scene_rows = evaluate(recoverer, samples, methods, camera_height_known=camera_height_known)
    known = ", camera height known" if camera_height_known else ""
    known += f", population {population}" if population != POPULATION else ""
    heading = (
        f"Benchmark on {len(samples)} images of {directory}, HumanMoE {weights_label(weights)}{known} "
        f"({time.strftime('%Y-%m-%d')})\n\n"
    )
    report = heading + markdown_table(rows, methods, seconds) + "\n" + summary_line(rows, methods) + "\n"
    hidden = [m for m in methods if m in UNKNOWN_CAMERA_METHODS]
    if "estimated" in methods:
        report += (
            "\nThe focal length with K hidden (per image)\n\n" + focal_table(rows, hidden) + "\n" + focal_summary(rows) + "\n"
        )
    if scene_rows:
        report += (
            "\nScene depth anchored on the people `full` recovered (true depth corrupted per image; "
            "means over images; planar: median AbsRel on the true floor pixels)\n\n"
            + depth_bench.markdown_table(scene_rows)
            + "\n\nscene "
            + depth_bench.summary_line(scene_rows)
            + "\n"
        )
    with staged_output(out_dir, overwrite) as staging:
        (staging / MARKER).write_text(report)
        write_csv(rows, staging / "results.csv")
        write_plots(rows, methods, staging)
    return report
