"""Image -> people -> files: the one place that wires the stages together.

``Recoverer`` loads every model once (BlazePose graphs, Anny, the fitter, the renderer, the
depth backend) and ``infer`` runs one image: detect people and their keypoints, fit metric
Anny bodies under the image's intrinsics, estimate the scene's metric depth and make it agree
with the people, and return a ``RecoveryResult`` whose ``save`` writes ``result.json``,
``scene.glb``, ``overlay.png`` and, with scene depth, ``depth.npy`` and ``depth.png`` (the
output contract in DESIGN.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import torch
from PIL import Image

from metrichmsr._outputs import staged_output
from metrichmsr.body import JOINT_NAMES, PHENOTYPE_NAMES, POSE_BONES, BodyModel, BodyParams, up_directions
from metrichmsr.camera import Intrinsics, resolve_intrinsics
from metrichmsr.defaults import MAX_PEOPLE, MIN_PERSON_PX, MIN_SCORE
from metrichmsr.devices import Device, resolve_device
from metrichmsr.errors import InputError
from metrichmsr.fit import BodyFitter, FitConfig, evidence_from_blazepose
from metrichmsr.image_io import load_image
from metrichmsr.models.humanmoe import (
    HumanMoE,
    crop_from_image,
    inputs_from_blazepose,
    silhouette_from_segmentation,
    to_fit_params,
)
from metrichmsr.perception import BLAZEPOSE_LANDMARK_NAMES, PersonObservation, PoseDetector, box_containment, feet_seen
from metrichmsr.scene.depth import DepthBackend, depth_backend
from metrichmsr.scene.floor import (
    FloorPlane,
    floor_from_people,
    foot_contacts,
    placing_people,
    shared_floor_scales,
    sunken_scales,
)
from metrichmsr.scene.horizon import ImageLines, with_floor_extent
from metrichmsr.scene.refine import human_anchors, people_depth, refine_depth, scene_summary

SCHEMA = "metrichmsr.result/1"
#: The shipped HumanMoE weights (recipe: metrichmsr/train/humanmoe_gpu.toml, then
#: humanmoe_gpu_renders.toml; see BENCHMARKS.md).
HUMANMOE_WEIGHTS = Path(__file__).parent / "models" / "weights" / "humanmoe.pt"
CameraModel = Literal["rays", "box"]


@dataclass
class PersonResult:
    """One recovered person; camera frame (OpenCV), metres, pixels of the input image."""

    id: int
    bbox: np.ndarray  # (4,) [x0, y0, x1, y1] px
    score: float
    translation: np.ndarray  # (3,) hip midpoint, m
    height_m: float  # standing height of the rest-pose body, m
    joints3d: np.ndarray  # (23, 3) JOINT_NAMES order, m
    keypoints2d: np.ndarray  # (33, 3) BlazePose landmarks: x_px, y_px, visibility
    vertices: np.ndarray  # (V, 3) posed mesh, m
    phenotype: np.ndarray  # (6,) PHENOTYPE_NAMES order, in [0, 1]
    bone_rotvec: np.ndarray  # (P, 3) POSE_BONES axis-angle, rad
    global_rotation: np.ndarray  # (3, 3)
    # Nearer and smaller by this factor than the network read them, to stand on the floor the
    # others place (their feet were sunk below it: a child read as an adult further away); 1: as read.
    floor_scale: float = 1.0
    # Then farther and taller (> 1) or nearer and shorter (< 1) by this factor, toward the
    # floor the people share (scene.floor.shared_floor_scales); 1: left where they were.
    shared_floor_scale: float = 1.0

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "bbox": _floats(self.bbox),
            "score": round(float(self.score), 4),
            "translation": _floats(self.translation),
            "height_m": round(float(self.height_m), 4),
            "floor_scale": round(float(self.floor_scale), 4),
            "shared_floor_scale": round(float(self.shared_floor_scale), 4),
            "joints3d": {name: _floats(p) for name, p in zip(JOINT_NAMES, self.joints3d)},
            "keypoints2d": {name: _floats(p) for name, p in zip(BLAZEPOSE_LANDMARK_NAMES, self.keypoints2d)},
            "body": {
                "model": "anny",
                "phenotype": {name: round(float(v), 5) for name, v in zip(PHENOTYPE_NAMES, self.phenotype)},
                "pose": {
                    "parameterization": "anny local-ref: axis-angle (rad) about each bone head, Anny world axes; other bones at rest",
                    "bones": {name: _floats(r, 5) for name, r in zip(POSE_BONES, self.bone_rotvec)},
                },
                "global_rotation": [_floats(row, 6) for row in self.global_rotation],
                "frame": "X_cam = global_rotation @ [[1,0,0],[0,0,-1],[0,1,0]] @ (X_anny - hip_midpoint_anny) + translation",
            },
        }


@dataclass
class SceneResult:
    """The scene around the people, in the camera frame.

    ``depth_m`` (H, W) float32 camera-frame z in metres, NaN where unknown: the backend's depth
    made to agree with the people (``scene.refine``), or the planar layout built from them.
    ``summary`` is result.json's ``scene`` record (backend, refinement, floor). The floor
    itself is :attr:`RecoveryResult.floor`.
    """

    depth_m: np.ndarray | None
    summary: dict


@dataclass
class RecoveryResult:
    """Everything recovered from one image."""

    image: np.ndarray  # (H, W, 3) uint8 RGB as decoded
    image_path: str
    intrinsics: Intrinsics
    people: list[PersonResult] = field(default_factory=list)
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))  # (F, 3) shared mesh faces
    boxes_without_person: list[int] = field(default_factory=list)  # indices of given boxes where no pose was found
    scene: SceneResult | None = None
    floor: FloorPlane | None = None  # the floor the people stand on (:meth:`Recoverer.stand_on_floor`); None: nobody placed one

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "image": {"path": self.image_path, "width": self.width, "height": self.height},
            "camera": {
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.intrinsics.to_dict().items()},
                "fov_deg": round(self.intrinsics.horizontal_fov_deg(self.width), 3),  # horizontal
            },
            "people": [p.to_json() for p in self.people],
            **({"scene": self.scene.summary} if self.scene is not None else {}),
        }

    def save(self, out_dir: str | Path, renderer=None) -> Path:
        """Write result.json, scene.glb, overlay.png (and depth.npy, depth.png) into ``out_dir`` atomically.

        The files are written into a hidden sibling folder that replaces ``out_dir`` only once
        complete, so an interrupted run never leaves a half-written result folder.
        """
        from metrichmsr.render import Renderer
        from metrichmsr.scene.export import write_depth_png, write_scene_glb

        depth_m = self.scene.depth_m if self.scene is not None else None
        floor = self.floor if self.scene is not None else None  # no scene asked for: no floor drawn
        with staged_output(Path(out_dir)) as staging:
            meshes = [(p.vertices, self.faces) for p in self.people]
            (staging / "result.json").write_text(json.dumps(self.to_json(), indent=1))
            write_scene_glb(
                staging / "scene.glb", meshes, self.intrinsics.K, (self.width, self.height), image=self.image,
                scene_depth_m=depth_m, floor=floor,
            )  # fmt: skip
            renderer = renderer or Renderer()
            overlay = renderer.overlay(self.image, self.intrinsics.K, meshes) if meshes else self.image
            Image.fromarray(overlay).save(staging / "overlay.png", optimize=False)
            if depth_m is not None:
                np.save(staging / "depth.npy", depth_m)
                write_depth_png(staging / "depth.png", depth_m)
        return Path(out_dir)


def _floats(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


#: A detection at least ``PART_INSIDE`` (area) inside a taller, better-seen person's box and
#: recovered ``PART_FARTHER`` times as far is a part of that person (a limb, a head) that
#: BlazePose took for a whole, small body and HumanMoE placed far behind. On the held-out
#: benchmark that held for 17 detections: 14 matched no one, 1 a real person.
PART_INSIDE = 0.8
PART_FARTHER = 1.5


def without_parts_read_as_far(people: list[PersonResult]) -> list[PersonResult]:
    """``people`` less those that are a part of another read as a far-away person (see
    ``PART_INSIDE``); the rest keep their order and are numbered again from 0."""

    def height(person: PersonResult) -> float:
        return float(person.bbox[3] - person.bbox[1])

    def is_part(person: PersonResult) -> bool:
        distance = float(np.linalg.norm(person.translation))
        return any(
            other.score > person.score
            and height(other) > height(person)
            and box_containment(person.bbox, other.bbox) >= PART_INSIDE
            and distance >= PART_FARTHER * float(np.linalg.norm(other.translation))
            for other in people
        )

    return [replace(person, id=i) for i, person in enumerate(p for p in people if not is_part(p))]


#: Relative error of a recovered person's distance that the floor fit allows for (the
#: held-out benchmark's median is ~8%, see BENCHMARKS.md).
RECOVERED_DEPTH_NOISE = 0.1
#: People with a shorter box do not place the floor: on the held-out benchmark every detection
#: under 20 px tall and 58% of those 20-40 px were false, and one such speck on its own put
#: the camera 30 m above the floor.
MIN_FLOOR_PERSON_PX = 40.0


def _scene_lines(people: list[PersonResult], image: np.ndarray, K: np.ndarray) -> ImageLines:
    """The image's straight lines, the people's boxes left out (their edges are not the scene's)."""
    return ImageLines(image, K, exclude_boxes=np.stack([p.bbox for p in people]))


def people_floor(
    people: list[PersonResult], image: np.ndarray | None = None, K: np.ndarray | None = None, camera_height_m: float | None = None,
    lines: ImageLines | None = None,
) -> tuple[FloorPlane | None, np.ndarray | None]:  # fmt: skip
    """The floor under recovered people (``scene.floor.floor_from_people``) and their foot contacts.

    Each body's up direction is its global rotation's (HumanMoE learned it from upright
    bodies in every pose family, so sitting and crouching people give it too); only people
    whose feet BlazePose saw place the floor, unless nobody's were; people under
    :data:`MIN_FLOOR_PERSON_PX` tall never do. Given the (H, W, 3) image and its K, the
    floor's tilt is then taken from the image's vanishing points near the bodies' up
    (``scene.horizon.up_from_lines``) where it has enough straight lines; the people still
    give its height. The vertical lines' feet behind the people also say where the floor
    ends (``FloorPlane.wall_distance_m``, the planar layout's backdrop), and the floor's own
    lines how far it is seen (``FloorPlane.floor_seen_m``), both at the floor's final height.
    With ``camera_height_m`` (the camera's known height above the floor, metres) the floor
    takes that height instead of the people's. ``lines``: the image's lines, already looked for
    with these people's boxes left out (default: looked for in ``image``).

    Returns (the floor or None, (N, 3) camera-frame foot contacts in metres with NaN rows for
    people who did not place the floor, or None without a floor).
    """
    tall = np.array([p.bbox[3] - p.bbox[1] >= MIN_FLOOR_PERSON_PX for p in people], dtype=bool)
    if not tall.any():
        return None, None
    joints = np.stack([p.joints3d for p in people])
    seen = feet_seen(np.stack([p.keypoints2d for p in people]))
    ups = up_directions(np.stack([p.global_rotation for p in people]))
    place = dict(ups=ups[tall], feet_seen=seen[tall], depth_noise=RECOVERED_DEPTH_NOISE)
    floor = floor_from_people(joints[tall], **place)
    if lines is None and image is not None:
        lines = _scene_lines(people, image, K)
    line_up = lines.up_near(floor.up) if floor is not None and lines is not None else None
    if line_up is not None:
        floor = floor_from_people(joints[tall], **place, scene_up=line_up.up)
    if floor is None:
        return None, None
    if camera_height_m is not None:
        floor = replace(floor, camera_height_m=float(camera_height_m), height_source="user")
    if line_up is not None:  # where the floor ends, at the height it has now
        floor = with_floor_extent(floor, line_up, lines.K, beyond_m=float(np.nanmax(joints @ floor.forward)))
    contacts = foot_contacts(joints, floor.up)
    contacts[~(tall & placing_people(tall & seen))] = np.nan  # no anchor where no floor was placed
    return floor, contacts


def silhouettes(observations: list[PersonObservation], grid: int) -> torch.Tensor | None:
    """(N, grid, grid) HumanMoE silhouettes of the people's BlazePose segmentations (zeros for
    anyone without one); None when ``grid`` is 0 (a model without silhouette tokens)."""
    if not grid:
        return None
    return torch.stack([silhouette_from_segmentation(o.segmentation, o.segmentation_box, o.bbox, grid) for o in observations])


def _load_network(weights: str | Path, device: torch.device) -> HumanMoE:
    """The HumanMoE network in ``weights``; InputError (one line) for a missing or foreign file."""
    weights = Path(weights)
    if not weights.is_file():
        raise InputError(f"weights {weights}: no such file")
    try:
        return HumanMoE.load(weights, map_location=device)
    except Exception:  # torch.load's errors for a foreign file are of many kinds, and long
        raise InputError(f"weights {weights}: not a HumanMoE network file (`metrichmsr train` writes them)") from None


class Recoverer:
    """Metric people from one image; load once, call ``infer`` per image.

    Args:
        device: where the body model and fit run ("auto": CUDA when available).
        min_person_px: smallest person height (pixels) the detector looks for.
        min_score: BlazePose detection and presence confidence a person needs, in [0, 1].
        max_people: most people recovered from one image (the most confident ones).
        fit_config: iterations and loss weights of the metric fit.
        depth: scene depth backend, a ``--depth`` spec (``planar``, ``none``, ``file:PATH``,
            ``hf:MODEL``; see ``metrichmsr.scene.depth``) or a backend object.
        init: "humanmoe": a HumanMoE network predicts each body in one pass;
            "none": the fit starts from a typical adult.
        weights: the HumanMoE network's file (``metrichmsr train``'s ``humanmoe.pt``); default
            the shipped one. A network with silhouette tokens makes the detector keep
            BlazePose's segmentations.
        refine: also run the metric fit, started from HumanMoE's prediction (or from a typical
            adult with ``init="none"``, which needs it). Off by default: on the held-out
            benchmark the fit makes HumanMoE's predictions worse (BENCHMARKS.md).
    """

    def __init__(
        self,
        device: Device = "auto",
        min_person_px: float = MIN_PERSON_PX,
        min_score: float = MIN_SCORE,
        max_people: int = MAX_PEOPLE,
        fit_config: FitConfig = FitConfig(),
        depth: str | DepthBackend = "planar",
        init: Literal["humanmoe", "none"] = "humanmoe",
        refine: bool = False,
        weights: str | Path = HUMANMOE_WEIGHTS,
    ):
        if init not in ("humanmoe", "none"):
            raise ValueError(f"init must be 'humanmoe' or 'none', got {init!r}")
        if not refine and init == "none":
            raise ValueError("init='none' needs refine=True: nothing would fit the people")
        self.device = resolve_device(device)
        self.init_model = _load_network(weights, self.device) if init == "humanmoe" else None
        self.refine = refine
        self.depth = depth_backend(depth, str(self.device)) if isinstance(depth, str) else depth
        if hasattr(self.depth, "load"):
            self.depth.load()  # a depth network: load it with the other models, not on the first image
        segmentation = self.init_model is not None and self.init_model.config.silhouette_grid > 0
        self.detector = PoseDetector(min_person_px=min_person_px, max_people=max_people, min_score=min_score, segmentation=segmentation)
        self.body = BodyModel().to(self.device)
        self.fitter = BodyFitter(self.body, fit_config)
        self._renderer = None

    @property
    def renderer(self):
        from metrichmsr.render import Renderer

        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer

    def infer(
        self,
        image: np.ndarray | str | Path,
        K: np.ndarray | Intrinsics | None = None,
        boxes: np.ndarray | None = None,
        exif: Mapping[int, object] | None = None,
        camera_height_m: float | None = None,
    ) -> RecoveryResult:
        """Recover every person in ``image``.

        Args:
            image: (H, W, 3) uint8 RGB, or a path to an image file.
            K: (3, 3) intrinsics in pixels or an ``Intrinsics``; None: EXIF, else the default FOV.
            boxes: optional (N, 4) person boxes [x0, y0, x1, y1] px; then exactly these people.
            exif: EXIF tags of an in-memory image, used for the focal length when K is None.
            camera_height_m: the camera's height above the floor in metres, when known (a
                mounted camera): the people standing on the floor are placed by it
                (:meth:`stand_on_floor`).
        """
        if camera_height_m is not None and not (np.isfinite(camera_height_m) and camera_height_m > 0):
            raise InputError(f"camera height must be a positive number of metres, got {camera_height_m}")
        image_path = ""
        if isinstance(image, (str, Path)):
            image_path = str(image)
            image, exif = load_image(image)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        if isinstance(K, Intrinsics):
            intrinsics = K
        elif K is not None:
            K = np.asarray(K, dtype=np.float64)
            if K.shape != (3, 3):
                raise InputError(f"K must be (3, 3), got {K.shape}")
            intrinsics = resolve_intrinsics(width, height, intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
        else:
            intrinsics = resolve_intrinsics(width, height, exif=exif)

        detected = self.detect(image, boxes=boxes)
        result = RecoveryResult(image, image_path, intrinsics, faces=self.body.faces.cpu().numpy())
        if boxes is not None:
            result.boxes_without_person = [i for i, o in enumerate(detected) if o.score == 0]
        people = self.fit_people([o for o in detected if o.score > 0], intrinsics.K, image=image)
        if boxes is None:  # the user's boxes are people by definition
            people = without_parts_read_as_far(people)
        result.people, result.floor, contacts = self.stand_on_floor(people, image, intrinsics.K, camera_height_m)
        result.scene = self.scene_depth(image, intrinsics.K, result.people, result.faces, result.floor, contacts)
        return result

    def stand_on_floor(
        self, people: list[PersonResult], image: np.ndarray, K: np.ndarray, camera_height_m: float | None = None
    ) -> tuple[list[PersonResult], FloorPlane | None, np.ndarray | None]:
        """The floor under the people (:func:`people_floor`), and the people brought onto it.

        1. Anyone whose feet sink below it is brought nearer and made younger to stand on it
           (``scene.floor.sunken_scales``; ``floor_scale``). Their sunken feet had tilted the
           floor where no lines set its tilt, so it is then placed again and they are brought
           onto that one.
        2. The people standing on it are moved toward the depth their feet agree on
           (``scene.floor.shared_floor_scales``; ``shared_floor_scale``), each given Anny's
           height parameter for their new height, and the floor is placed again. With
           ``camera_height_m`` (known, metres) the floor has that height and they are moved
           toward it instead, one person being enough.

        Returns (people, floor or None, (N, 3) contacts or None) as :func:`people_floor`.
        """
        # Moving people about the camera leaves their boxes, and so the image's lines, as they were.
        lines = _scene_lines(people, image, K) if people else None
        floor, contacts = people_floor(people, image, K, camera_height_m, lines)
        if floor is None:
            return people, floor, contacts
        scales = sunken_scales(floor, contacts)
        sunk = np.flatnonzero(scales < 1.0)
        if len(sunk):
            moved = self._scaled(people, sunk, scales[sunk], sunk=True)
            floor, contacts = people_floor(moved, image, K, camera_height_m, lines)
            ratio = floor.below_ratio(contacts[sunk]) if floor is not None else np.nan
            if np.isfinite(ratio).all():  # onto the floor placed again
                moved = self._scaled(people, sunk, np.minimum(scales[sunk] / ratio, 1.0), sunk=True)
                floor, contacts = people_floor(moved, image, K, camera_height_m, lines)
            people = moved
            if floor is None:
                return people, floor, contacts
        scales = shared_floor_scales(floor, contacts)
        level = np.flatnonzero(scales != 1.0)
        if len(level):
            people = self._scaled(people, level, scales[level], sunk=False)
            floor, contacts = people_floor(people, image, K, camera_height_m, lines)
        return people, floor, contacts

    def _scaled(self, people: list[PersonResult], which: np.ndarray, scales: np.ndarray, sunk: bool) -> list[PersonResult]:
        """``people`` with those at indices ``which`` scaled about the camera by ``scales`` and
        given the body of their new height (``BodyModel.for_height``): the younger one when
        ``sunk`` (their ``floor_scale``), else the same one taller or shorter (their
        ``shared_floor_scale``)."""

        def tensor(values: list) -> torch.Tensor:
            return torch.as_tensor(np.stack(values), dtype=torch.float32, device=self.device)

        params = BodyParams(
            tensor([people[i].phenotype for i in which]),
            tensor([people[i].bone_rotvec for i in which]),
            tensor([people[i].global_rotation for i in which]),
            tensor([people[i].translation * scale for i, scale in zip(which, scales)]),
        )
        heights = tensor([people[i].height_m * scale for i, scale in zip(which, scales)])
        params.phenotype = self.body.for_height(params.phenotype, heights, "age" if sunk else "height")
        out = list(people)
        for i, scale, body in zip(which, scales, self._posed(params)):
            factor = {"floor_scale": float(scale)} if sunk else {"shared_floor_scale": float(scale)}
            out[i] = replace(people[i], **body, **factor)
        return out

    def scene_depth(
        self, image: np.ndarray, K: np.ndarray, people: list[PersonResult], faces: np.ndarray,
        floor: FloorPlane | None, contacts: np.ndarray | None,
    ) -> SceneResult | None:  # fmt: skip
        """The scene's metric depth from the backend, refined to agree with the people; None for ``none``.

        ``floor`` and ``contacts``: from :meth:`stand_on_floor`.
        """
        if self.depth.spec == "none":
            return None
        # Without a floor the people give planar nothing: it would fit its own from every body,
        # the specks people_floor leaves out included.
        joints = np.stack([p.joints3d for p in people]) if floor is not None else None
        estimate = self.depth.estimate(image, K, joints, floor=floor)
        if estimate is None:
            why = "the planar layout is built from people, and nobody was found" if not people else "the backend gave none"
            return SceneResult(None, {**scene_summary(None, None, floor), "backend": self.depth.spec, "no_depth": why})
        refinement = None
        if people and not estimate.from_people:  # planar depth is built from the people already
            size = (image.shape[1], image.shape[0])
            people_depth_m, ids = people_depth(self.renderer, K, size, [(p.vertices, faces) for p in people])
            refinement = refine_depth(estimate.depth_m, human_anchors(K, people_depth_m, ids, contacts, floor))
        depth_m = refinement.depth_m if refinement is not None else estimate.depth_m
        return SceneResult(depth_m, scene_summary(estimate, refinement, floor))

    def detect(self, image: np.ndarray, boxes: np.ndarray | None = None) -> list:
        """People and their BlazePose landmarks in an (H, W, 3) uint8 image (``PoseDetector.detect``)."""
        return self.detector.detect(image, boxes=boxes)

    def fit_people(
        self, observations: list, K: np.ndarray, camera_model: CameraModel = "rays", image: np.ndarray | None = None
    ) -> list[PersonResult]:
        """Metric bodies for detected people (``PoseDetector.detect`` observations) under K (3, 3).

        ``camera_model`` says what the fit knows of where each person sits in the image:
        "rays" (the method): every keypoint's own ray through the true K, and the 3D landmarks
        turned by the box-centre ray. "box" (a baseline, CLIFF-style): each person is fitted as
        if their box were centred on the optical axis, then moved to the box's position by the
        box-centre offset at the fitted depth; it knows the box and the focal length, not the
        rays, so it misses the perspective of off-centre people.

        ``image`` (H, W, 3) uint8: needed by a HumanMoE network with an image backbone (its crops).
        """
        return self.fit_people_variants(observations, [(K, camera_model)], image=image)[0]

    def fit_people_variants(
        self,
        observations: list,
        variants: list[tuple[np.ndarray, CameraModel]],
        humanmoe: bool | None = None,
        refine: bool | None = None,
        image: np.ndarray | None = None,
    ) -> list[list[PersonResult]]:
        """``fit_people`` for several (K, camera_model) variants of the same people, fitted as one batch.

        ``humanmoe`` and ``refine`` override the recoverer's stages for this call (benchmarks
        compare them): HumanMoE's prediction, the fit, or the fit started from the prediction.
        """
        use_model = self.init_model is not None if humanmoe is None else humanmoe
        refine = self.refine if refine is None else refine
        if use_model and self.init_model is None:
            raise ValueError("this recoverer was made with init='none': no HumanMoE network loaded")
        if not (use_model or refine):
            raise ValueError("nothing to run: neither HumanMoE nor the fit")
        if not observations:
            return [[] for _ in variants]
        n = len(observations)
        landmarks2d, boxes, cameras, offsets_px = [], [], [], []
        for K, camera_model in variants:
            kp = np.stack([o.landmarks2d for o in observations])
            box = np.stack([o.bbox for o in observations])
            offset_px = np.zeros((n, 2))
            if camera_model == "box":
                offset_px = (box[:, :2] + box[:, 2:]) / 2 - K[:2, 2]
                kp = kp.copy()
                kp[..., :2] -= offset_px[:, None]
                box = box - np.tile(offset_px, 2)
            elif camera_model != "rays":
                raise ValueError(f"camera_model must be 'rays' or 'box', got {camera_model!r}")
            landmarks2d.append(kp)
            boxes.append(box)
            cameras.append(np.broadcast_to(K, (n, 3, 3)))
            offsets_px.append(offset_px / K[[0, 1], [0, 1]])
        K_all = np.concatenate(cameras)
        world = np.concatenate([np.stack([o.world_landmarks for o in observations])] * len(variants))
        landmarks2d, boxes = np.concatenate(landmarks2d), np.concatenate(boxes)
        init = None
        if use_model:
            with torch.no_grad():  # not inference_mode: the fit differentiates through what it starts from
                silhouette = silhouettes(observations, self.init_model.config.silhouette_grid)
                if silhouette is not None:
                    silhouette = silhouette.repeat(len(variants), 1, 1)  # the box shift moves box and window alike
                inputs = inputs_from_blazepose(landmarks2d, world, boxes, K_all, silhouette)
                inputs.crop = self._crops(observations, image, len(variants))
                init = to_fit_params(self.init_model(inputs.to(self.device)))
        if refine:
            evidence = evidence_from_blazepose(landmarks2d, world, boxes, K_all).to(self.device)
            params = self.fitter.fit(evidence, torch.as_tensor(K_all, dtype=torch.float32, device=self.device), init=init)
        else:
            params = init
        # "box": back from the box-centred camera to the box's place, at the fitted depth.
        offset = torch.as_tensor(np.concatenate(offsets_px), dtype=torch.float32, device=self.device)
        depth = params.translation[:, 2:]
        params.translation = torch.cat((params.translation[:, :2] + offset * depth, depth), dim=-1)
        people = self._people(list(observations) * len(variants), params)
        for i, person in enumerate(people):
            person.id = i % n  # ids count the people of one variant
        return [people[i * n : (i + 1) * n] for i in range(len(variants))]

    def _crops(self, observations: list, image: np.ndarray | None, repeats: int) -> torch.Tensor | None:
        """HumanMoE's image crops of the people (``repeats`` times), None for a network without a backbone."""
        config = self.init_model.config
        if not config.backbone:
            return None
        if image is None:
            raise ValueError("this HumanMoE network reads image crops: pass the image")
        crops = crop_from_image(image, np.stack([o.bbox for o in observations]), config.backbone_image_size)
        return crops.repeat(repeats, 1, 1, 1)  # the box shift moves box and window alike

    def _people(self, observations, params: BodyParams) -> list[PersonResult]:
        return [
            PersonResult(id=i, bbox=obs.bbox, score=obs.score, keypoints2d=obs.landmarks2d, **body)
            for i, (obs, body) in enumerate(zip(observations, self._posed(params)))
        ]

    @torch.inference_mode()
    def _posed(self, params: BodyParams) -> list[dict]:
        """Per person, the PersonResult fields of the body ``params`` describe (numpy)."""
        out = self.body(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
        heights = self.body.standing_height(out.rest_vertices)
        return [
            dict(
                translation=params.translation[i].cpu().numpy(),
                height_m=float(heights[i]),
                joints3d=out.joints[i].cpu().numpy(),
                vertices=out.vertices[i].cpu().numpy(),
                phenotype=params.phenotype[i].cpu().numpy(),
                bone_rotvec=params.bone_rotvec[i].cpu().numpy(),
                global_rotation=params.global_rotation[i].cpu().numpy(),
            )
            for i in range(len(params.translation))
        ]

    def save(self, result: RecoveryResult, out_dir: str | Path) -> Path:
        return result.save(out_dir, renderer=self.renderer)

    def close(self) -> None:
        self.detector.close()
        if self._renderer is not None:
            self._renderer.close()

    def __enter__(self) -> "Recoverer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
