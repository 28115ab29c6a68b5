"""Synthetic scenes on disk: ``DIR/<seed>.png`` plus ``DIR/<seed>.npz`` ground truth, and ``DIR/synth.json``.

The npz holds, camera frame (OpenCV), metres, pixels of the png:

| key | shape | what |
| --- | --- | --- |
| K | (3, 3) | intrinsics |
| root | (N, 3) | body root, the hip midpoint |
| joints | (N, 23, 3) | COCO-17 + 6 foot points, ``metrichmsr.body.JOINT_NAMES`` order |
| vertices | (N, 13718, 3) float32 | posed Anny mesh |
| height_m | (N,) | standing height |
| phenotype | (N, 6) | Anny phenotype, ``PHENOTYPE_NAMES`` order, in [0, 1] |
| bone_rotvec | (N, 18, 3) | ``POSE_BONES`` axis-angle, rad |
| global_rotation | (N, 3, 3) | body orientation (see ``BodyModel.forward``) |
| pose_family | (N,) str | ``synth.poses.POSE_FAMILIES`` |
| boxes | (N, 4) | box of the visible pixels; zeros when hidden |
| boxes_full | (N, 4) | box of the whole projected mesh |
| instance_ids | (H, W) int16 | person index per pixel, -1 elsewhere (instance masks) |
| depth_m | (H, W) float32 | metric depth (z) of the nearest surface |
| floor_up, floor_camera_height_m | (3,), () | the floor plane (``scene.floor.FloorPlane``) |
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metrichmsr._outputs import staged_output
from metrichmsr.body import BodyParams
from metrichmsr.errors import InputError
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.synth.people import SyntheticImage
from metrichmsr.synth.scenes import HELD_OUT_SEED_START, SceneConfig, sample_scene

INDEX_FILE = "synth.json"


def save_sample(directory: Path, name: str, scene: SyntheticImage) -> None:
    """Write ``name.png`` and ``name.npz`` (see the module docstring) into ``directory``."""
    Image.fromarray(scene.image).save(directory / f"{name}.png")
    params = scene.params
    np.savez_compressed(
        directory / f"{name}.npz",
        K=scene.K,
        root=params.translation.numpy(),
        joints=scene.joints,
        vertices=scene.vertices.astype(np.float32),
        height_m=scene.height_m,
        phenotype=params.phenotype.numpy(),
        bone_rotvec=params.bone_rotvec.numpy(),
        global_rotation=params.global_rotation.numpy(),
        pose_family=np.array(scene.pose_family, dtype=str),
        boxes=scene.boxes,
        boxes_full=scene.boxes_full,
        instance_ids=scene.instance_ids,
        depth_m=scene.depth_m,
        floor_up=np.asarray(scene.floor.up),
        floor_camera_height_m=scene.floor.camera_height_m,
    )


def load_sample(png_path: Path) -> SyntheticImage:
    """Read one scene written by ``save_sample`` (the png and the npz next to it)."""
    png_path = Path(png_path)
    with np.load(png_path.with_suffix(".npz")) as data:
        gt = {key: data[key] for key in data.files}
    tensor = {
        key: torch.as_tensor(gt[key], dtype=torch.float32) for key in ("phenotype", "bone_rotvec", "global_rotation", "root")
    }
    return SyntheticImage(
        image=np.asarray(Image.open(png_path).convert("RGB")),
        K=gt["K"],
        params=BodyParams(tensor["phenotype"], tensor["bone_rotvec"], tensor["global_rotation"], tensor["root"]),
        joints=gt["joints"],
        vertices=gt["vertices"],
        height_m=gt["height_m"],
        boxes=gt["boxes"],
        boxes_full=gt["boxes_full"],
        instance_ids=gt["instance_ids"],
        depth_m=gt["depth_m"],
        floor=FloorPlane(gt["floor_up"], float(gt["floor_camera_height_m"])),
        pose_family=tuple(str(f) for f in gt["pose_family"]),
    )


def read_index(directory: Path, kind: str = "images") -> dict:
    """A synth folder's ``synth.json``; InputError unless it is one of ``kind``: ``"images"``
    (:func:`write_dataset`'s stills) or ``"video"`` (``synth.video.write_clips``'s clips)."""
    directory = Path(directory)
    if not (directory / INDEX_FILE).is_file():
        raise InputError(f"{directory}: not a synth folder (no {INDEX_FILE}; make one with `metrichmsr synth`)")
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{directory / INDEX_FILE}: unreadable ({str(error).splitlines()[0]})") from None
    found = index.get("kind", "images") if isinstance(index, dict) else None  # sets older than clips say no kind
    if found == kind:
        return index
    if found == "video":
        raise InputError(
            f"{directory}: a synth set of video clips (`synth --video`); score `track` on it with "
            "`python -m metrichmsr.bench.track_synth`"
        )
    if found == "images":
        raise InputError(f"{directory}: a synth set of still images, not of clips (make clips with `metrichmsr synth --video`)")
    raise InputError(f"{directory / INDEX_FILE}: not a synth index (no known kind)")


def list_samples(directory: Path) -> list[Path]:
    """The scene pngs of a synth folder, in seed order; InputError if it is not one."""
    directory = Path(directory)
    read_index(directory)
    pngs = sorted(p for p in directory.glob("*.png") if p.with_suffix(".npz").is_file())
    if not pngs:
        raise InputError(f"{directory}: synth folder without any scene")
    return pngs


def write_dataset(
    out_dir: Path,
    n: int,
    seed: int,
    config: SceneConfig = SceneConfig(),
    body=None,
    renderer=None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render scenes ``seed .. seed + n - 1`` into ``out_dir``, written atomically when complete;
    ``overwrite``: replace an earlier set there (``metrichmsr._outputs.check_output``)."""
    from tqdm import tqdm

    from metrichmsr.body import BodyModel
    from metrichmsr.render import Renderer

    body = body or BodyModel()
    renderer = renderer or Renderer()
    with staged_output(Path(out_dir), overwrite) as staging:
        for s in tqdm(range(seed, seed + n), desc="synth", unit="image", disable=not progress):
            save_sample(staging, f"{s:08d}", sample_scene(body, renderer, s, config))
        write_index(staging, "images", seed, n, config, __doc__.split("\n\n", 1)[1])
    return Path(out_dir)


def write_index(directory: Path, kind: str, seed: int, n: int, config, format_doc: str) -> None:
    """``directory/synth.json``: what :func:`read_index` reads back: the set's ``kind``
    (``"images"`` or ``"video"``), its seeds ``seed .. seed + n - 1``, whether they are the
    held-out split, the config dataclass the scenes were drawn from and the files' format."""
    index = {
        "kind": kind,
        "seeds": [seed, seed + n - 1],
        "held_out": seed >= HELD_OUT_SEED_START,
        "config": asdict(config),
        "format": format_doc,
    }
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=1))
