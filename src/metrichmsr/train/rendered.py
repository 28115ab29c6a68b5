"""People of rendered ``synth`` folders as BlazePose really saw them, for training HumanMoE.

The simulated stream (``train.data.SyntheticPeople``) draws BlazePose's errors from a model of
them, joint by joint. Here BlazePose runs on rendered images instead, and each detection is
paired with the person it matched (box IoU >= 0.5 with the whole projected mesh, as in the
benchmark), so the inputs carry what the model leaves out: errors that move together (a
head's landmarks shift as one), landmarks that sit elsewhere on the body than Anny's joints,
people hidden by others or by props, and BlazePose's own boxes and masks.

Detection costs ~0.5 s an image on a 2-core CPU, so it runs once per folder and is cached next
to the images (``DETECTIONS_FILE``, written atomically, rebuilt when the folder's index or the
silhouette grid changes). Only training-split folders are accepted: the held-out seeds stay
out of training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from metrichmsr.body import BodyParams
from metrichmsr.errors import InputError
from metrichmsr.models.tokens import HumanInputs, inputs_from_blazepose
from metrichmsr.synth import HELD_OUT_SEED_START
from metrichmsr.train.data import PeopleTargets

#: The cache of one folder's matched detections (an npz: ``_FIELDS``, and ``key``, what it was made from).
DETECTIONS_FILE = "blazepose_people.npz"
MATCH_IOU = 0.5
_FIELDS = (
    "image",
    "landmarks2d",
    "world_landmarks",
    "bbox",
    "K",
    "silhouette",
    "phenotype",
    "bone_rotvec",
    "global_rotation",
    "translation",
    "joints",
    "image_size",
)


def matched_people(directory: Path, silhouette_grid: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Every detected person of a synth folder paired with their ground truth (cached).

    Returns arrays over the P matched people: ``image`` (P,) int, the index of their scene
    in ``training_scenes(directory)``; ``landmarks2d`` (P, 33, 3), ``world_landmarks``
    (P, 33, 3) and ``bbox`` (P, 4) as ``PersonObservation`` has them; ``K`` (P, 3, 3);
    ``silhouette`` (P, G, G) float16 (``silhouette_grid`` G; (P, 0, 0) when G is 0); the truth:
    ``phenotype`` (P, 6), ``bone_rotvec`` (P, 18, 3), ``global_rotation`` (P, 3, 3),
    ``translation`` (P, 3) root, ``joints`` (P, 23, 3), camera frame, metres; ``image_size``
    (P, 2) [W, H].
    """
    directory = Path(directory)
    pngs, index = training_scenes(directory)
    key = json.dumps({"index": index, "silhouette_grid": silhouette_grid, "images": len(pngs)}, sort_keys=True)
    cache = directory / DETECTIONS_FILE
    if cache.is_file():
        with np.load(cache) as data:
            if str(data["key"]) == key:
                return {name: data[name] for name in _FIELDS}
    people = _detect_and_match(pngs, silhouette_grid, progress)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.npz")
    np.savez_compressed(partial, key=np.array(key), **people)
    partial.replace(cache)
    return people


def training_scenes(directory: Path) -> tuple[list[Path], dict]:
    """The scene pngs and the index of a synth folder of training seeds; InputError otherwise."""
    from metrichmsr.synth.dataset import INDEX_FILE, list_samples

    pngs = list_samples(directory)
    index = json.loads((Path(directory) / INDEX_FILE).read_text())
    if index.get("held_out") or max(index["seeds"]) >= HELD_OUT_SEED_START:
        raise InputError(f"{directory}: held-out scenes (seeds >= {HELD_OUT_SEED_START}) are for benchmarks, not training")
    return pngs, index


def _detect_and_match(pngs: list[Path], silhouette_grid: int, progress: bool) -> dict[str, np.ndarray]:
    from tqdm import tqdm

    from metrichmsr.defaults import MIN_SCORE
    from metrichmsr.models.tokens import silhouettes
    from metrichmsr.perception import PoseDetector, match_boxes
    from metrichmsr.synth.dataset import load_sample

    found: dict[str, list] = {name: [] for name in _FIELDS}
    with PoseDetector(min_score=MIN_SCORE, segmentation=bool(silhouette_grid)) as detector:
        for image_index, png in enumerate(tqdm(pngs, desc="BlazePose on the renders", unit="image", disable=not progress)):
            scene = load_sample(png)
            height, width = scene.image.shape[:2]
            observations = [o for o in detector.detect(scene.image) if o.score > 0]
            full = np.clip(scene.boxes_full, 0, [width - 1, height - 1, width - 1, height - 1])
            pairs = match_boxes(np.array([o.bbox for o in observations]).reshape(-1, 4), full, MATCH_IOU)
            masks = silhouettes(observations, silhouette_grid) if observations else None
            for person, detection in sorted(pairs.items()):
                seen = observations[detection]
                found["image"].append(image_index)
                found["landmarks2d"].append(seen.landmarks2d)
                found["world_landmarks"].append(seen.world_landmarks)
                found["bbox"].append(seen.bbox)
                found["K"].append(scene.K)
                found["silhouette"].append(masks[detection].numpy() if masks is not None else np.zeros((0, 0)))
                found["phenotype"].append(scene.params.phenotype[person].numpy())
                found["bone_rotvec"].append(scene.params.bone_rotvec[person].numpy())
                found["global_rotation"].append(scene.params.global_rotation[person].numpy())
                found["translation"].append(scene.params.translation[person].numpy())
                found["joints"].append(scene.joints[person])
                found["image_size"].append((width, height))
    if not found["bbox"]:
        raise InputError(f"{pngs[0].parent}: BlazePose found nobody in these scenes")
    out = {name: np.stack(values).astype(np.float32) for name, values in found.items()}
    out["silhouette"] = out["silhouette"].astype(np.float16)
    out["image"] = out["image"].astype(np.int64)
    return out


class RenderedPeople:
    """Random batches of the matched people of one or more rendered synth folders.

    Args:
        directories: ``metrichmsr synth`` folders of training seeds.
        silhouette_grid: the model's ``silhouette_grid`` (0: no silhouettes).
        seed: of the batch draws.
        crop_size: > 0: each batch also carries the people's image crops of this side
            (``HumanInputs.crop``, for a network with an image backbone), cut from the pngs.
        holdout: the last ``holdout`` people are never drawn by ``sample``; ``validation``
            returns them.
    """

    def __init__(
        self,
        directories: list[Path],
        silhouette_grid: int,
        seed: int = 0,
        crop_size: int = 0,
        holdout: int = 0,
        progress: bool = True,
    ):
        if not directories:
            raise ValueError("need at least one synth folder")
        parts, self.pngs = [], []
        for directory in directories:
            part = matched_people(Path(directory), silhouette_grid, progress)
            part["image"] = part["image"] + len(self.pngs)  # an index into all folders' pngs
            self.pngs += training_scenes(Path(directory))[0]
            parts.append(part)
        people = {name: np.concatenate([p[name] for p in parts]) for name in _FIELDS}
        if not 0 <= holdout < len(people["bbox"]):
            raise ValueError(f"holdout must leave people to train on: {holdout} of {len(people['bbox'])}")
        self.image = people["image"]
        self.crop_size, self.holdout = crop_size, holdout
        self.inputs = inputs_from_blazepose(
            people["landmarks2d"],
            people["world_landmarks"],
            people["bbox"],
            people["K"],
            people["silhouette"] if silhouette_grid else None,
        )

        def f32(name: str) -> torch.Tensor:
            return torch.as_tensor(people[name], dtype=torch.float32)

        params = BodyParams(f32("phenotype"), f32("bone_rotvec"), f32("global_rotation"), f32("translation"))
        self.targets = PeopleTargets(params, f32("joints"), f32("image_size"))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """The people ``sample`` draws from (the held-out ones not counted)."""
        return len(self.inputs) - self.holdout

    def sample(self, batch_size: int) -> tuple[HumanInputs, PeopleTargets]:
        """``batch_size`` people drawn with replacement (``SyntheticPeople.sample``'s types)."""
        return self._people(torch.randint(0, len(self), (batch_size,), generator=self.generator))

    def validation(self) -> tuple[HumanInputs, PeopleTargets]:
        """The ``holdout`` people set aside."""
        return self._people(torch.arange(len(self), len(self.inputs)))

    def _people(self, pick: torch.Tensor) -> tuple[HumanInputs, PeopleTargets]:
        inputs = self.inputs.select(pick)
        if self.crop_size:
            inputs.crop = self._crops(pick)
        return inputs, self.targets.select(pick)

    def _crops(self, pick: torch.Tensor) -> torch.Tensor:
        """(len(pick), 3, S, S) crops of the picked people, each png read once."""
        from PIL import Image

        from metrichmsr.models.tokens import crop_from_image

        crops = torch.empty(len(pick), 3, self.crop_size, self.crop_size)
        scenes = self.image[pick.numpy()]
        for scene in np.unique(scenes):
            rows = np.nonzero(scenes == scene)[0]
            with Image.open(self.pngs[scene]) as png:
                image = np.asarray(png.convert("RGB"))
            crops[rows] = crop_from_image(image, self.inputs.bbox[pick[rows]], self.crop_size)
        return crops
