"""HumanMoE ablations on a synth folder: camera encodings (ray map / box / none) and MoE vs a
dense feed-forward of the same size, each network used alone (one pass, the image's true K),
plus where the router sends each kind of token.

    python -m metrichmsr.bench.humanmoe_ablation DIR NAME=WEIGHTS.pt [NAME=WEIGHTS.pt ...] [--limit N]

Prints a markdown table per split, the router table of every MoE network and a summary line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def router_table(name: str, shares: dict[str, list[np.ndarray]]) -> str:
    """Mean share of each token group's expert choices per block and expert, as markdown."""
    groups = [g for g in ("keypoint", "ray", "box", "silhouette", "query_pose", "query_shape", "query_position") if g in shares]
    blocks, experts = np.mean(shares[groups[0]], axis=0).shape
    lines = [
        f"Router of `{name}`: share of each token group's expert choices (rows: block.expert)\n",
        "| block.expert | " + " | ".join(groups) + " |",
        "|" + "---|" * (len(groups) + 1),
    ]
    for b in range(blocks):
        for e in range(experts):
            cells = [f"{np.mean(shares[g], axis=0)[b, e]:.2f}" for g in groups]
            lines.append(f"| {b}.{e} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path)
    parser.add_argument("networks", nargs="+", help="NAME=WEIGHTS.pt")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()

    from metrichmsr.bench.report import markdown_table, median_rel_depth_err
    from metrichmsr.bench.score import score_image
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS, HumanMoE, router_statistics
    from metrichmsr.models.tokens import inputs_from_observations
    from metrichmsr.pipeline import Recoverer
    from metrichmsr.synth.dataset import list_samples, load_sample

    networks = dict(item.split("=", 1) for item in args.networks)
    samples = list_samples(args.input)[: args.limit]
    rows, seconds, shares = [], {n: [] for n in networks}, {n: {} for n in networks}
    loaded = {name: HumanMoE.load(path) for name, path in networks.items()}
    # One detection for all networks: with segmentations if any network reads silhouettes.
    segmenting = (networks[name] for name, model in loaded.items() if model.config.silhouette_grid)
    with Recoverer(device="cpu", weights=next(segmenting, HUMANMOE_WEIGHTS)) as recoverer:
        for path in samples:
            scene = load_sample(path)
            observations = [o for o in recoverer.detect(scene.image) if o.score > 0]
            for name, model in loaded.items():
                recoverer.init_model = model
                started = time.perf_counter()
                people = recoverer.fit_people(observations, scene.K, image=scene.image)
                seconds[name].append(time.perf_counter() - started)  # the network alone, detection excluded
                rows += score_image(scene, people, method=name, image=path.stem)
                if observations and model.config.ffn == "moe":
                    inputs = inputs_from_observations(observations, scene.K, model.config.silhouette_grid)
                    with torch.inference_mode():
                        stats = router_statistics(model(inputs), inputs)["share"]
                    for group, share in stats.items():
                        shares[name].setdefault(group, []).append(np.asarray(share))
    print(markdown_table(rows, list(networks), {n: statistics.mean(s) for n, s in seconds.items()}))
    for name in networks:
        if shares[name]:
            print(router_table(name, shares[name]))

    def pct(split: list[dict]) -> str:
        value = median_rel_depth_err(split)
        return "-" if value is None else f"{100 * value:.1f}%"

    parts = []
    for name in networks:
        mine = [r for r in rows if r["method"] == name]
        parts.append(f"{name} {pct(mine)} (FOV>=90: {pct([r for r in mine if r['fov_deg'] >= 90])})")
    print(f"summary: median rel. root-depth error, HumanMoE alone: {'; '.join(parts)}; {len(samples)} images")


if __name__ == "__main__":
    main()
