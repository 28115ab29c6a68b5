"""Image -> people -> files: the one place that wires the stages together.

``Recoverer`` loads every model once (BlazePose graphs, Anny, the fitter, the renderer, the
depth backend) and ``infer`` runs one image: detect people and their keypoints, fit metric
Anny bodies under the image's intrinsics, estimate the scene's metric depth and make it agree
with the people, and return a ``RecoveryResult`` whose ``save`` writes ``result.json``,
``scene.glb``, ``overlay.png``, the rigged people (``people_rigged.glb``, BVH) and, with scene
depth, ``depth.npy`` and ``depth.png`` (the output contract in DESIGN.md). ``track`` runs a
clip: the people of each frame on one floor, followed from frame to frame (``tracking``), for
``tracks.ClipTracks`` to write.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch

from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES, BodyModel, BodyParams
from metrichmsr.camera import Intrinsics, resolve_intrinsics
from metrichmsr.defaults import (
    DEFAULT_RIG_FORMATS,
    DETECT_EVERY,
    FULL_SCAN_EVERY,
    MAX_PEOPLE,
    MIN_PERSON_PX,
    MIN_SCORE,
    POPULATION,
)
from metrichmsr.devices import Device, resolve_device
from metrichmsr.fit import BodyFitter, FitConfig, evidence_from_blazepose
from metrichmsr.image_io import load_image
from metrichmsr.inputs import check_boxes, check_camera_height, check_image, check_K
from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS, load_network, to_body_params
from metrichmsr.models.tokens import crop_from_image, inputs_from_blazepose, silhouettes
from metrichmsr.perception import FaceDetector, PoseDetector, feet_seen
from metrichmsr.perception.landmarks import BLAZEPOSE_LANDMARK_NAMES, unexplained
from metrichmsr.perception.motion import MovingPixels
from metrichmsr.population import Population, adult_group_scale, adult_heights_m, all_adults, check_population
from metrichmsr.result import PersonResult, RecoveryResult, SceneResult, posed_bodies, posed_people
from metrichmsr.scene.anchors import human_anchors, people_depth
from metrichmsr.scene.depth import DepthBackend, depth_backend
from metrichmsr.scene.floor import (
    KNOWN_HEIGHT_SOURCES,
    MAX_STANDING_HEIGHT_M,
    FloorPlane,
    floating_scales,
    foot_contacts,
    shared_floor_scales,
    standing_on,
    sunken_scales,
)
from metrichmsr.scene.focal import camera_from_lines
from metrichmsr.scene.horizon import ImageLines
from metrichmsr.scene.placement import floating_phantoms, parts_read_as_far, people_floor, scene_lines
from metrichmsr.scene.refine import refine_depth, scene_summary
from metrichmsr.tracking import Tracker, appearances, onto_floor_scales, pooled_floor, standing_positions
from metrichmsr.tracks import TrackedFrame
from metrichmsr.video_io import DEFAULT_FPS, Frame

_AGE = PHENOTYPE_NAMES.index("age")
#: The PersonResult field a scaling about the camera is recorded in (``Recoverer._scaled``).
ScaleFactor = Literal["population_scale", "floor_scale", "shared_floor_scale"]


def _intrinsics(K: np.ndarray | Intrinsics | None, width: int, height: int, exif: Mapping[int, object] | None) -> Intrinsics:
    """The intrinsics of a W x H image: ``K`` as given ((3, 3) pixels or ``Intrinsics``), else
    from EXIF, else the default field of view (``camera.resolve_intrinsics``)."""
    if isinstance(K, Intrinsics):
        return K
    if K is not None:
        K = check_K(K)
        return resolve_intrinsics(width, height, intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    return resolve_intrinsics(width, height, exif=exif)


def without_parts_read_as_far(people: list[PersonResult]) -> list[PersonResult]:
    """``people`` less those that are a part of another read as a far-away person
    (``scene.placement.parts_read_as_far``); the rest keep their order and are numbered again from 0."""
    if not people:
        return people
    part = parts_read_as_far(
        np.stack([p.bbox for p in people]), np.array([p.score for p in people]), np.stack([p.translation for p in people])
    )
    return _without(people, part)


def without_unexplained(people: list[PersonResult], K: np.ndarray) -> list[PersonResult]:
    """``people`` less those whose body, posed onto their landmarks under K (3, 3), explains few
    of them (``perception.landmarks.unexplained``: a box over two people, a part of one, a
    sign); the rest keep their order and are numbered again from 0."""
    if not people:
        return people
    joints, landmarks = np.stack([p.joints3d for p in people]), np.stack([p.keypoints2d for p in people])
    return _without(people, unexplained(joints, landmarks, np.stack([p.bbox for p in people]), K))


def _without(people: list[PersonResult], drop: np.ndarray) -> list[PersonResult]:
    """``people`` less those where ``drop`` (N,) is True, the rest in their order numbered again from 0."""
    return [replace(person, id=i) for i, person in enumerate(p for p, dropped in zip(people, drop) if not dropped)]


def _people_floor(
    people: list[PersonResult], image: np.ndarray, K: np.ndarray, camera_height_m: float | None, lines: ImageLines | None
) -> tuple[FloorPlane | None, np.ndarray | None]:
    """``scene.placement.people_floor`` of recovered people."""
    if not people:
        return None, None
    return people_floor(
        np.stack([p.joints3d for p in people]),
        np.stack([p.bbox for p in people]),
        np.stack([p.global_rotation for p in people]),
        feet_seen(np.stack([p.keypoints2d for p in people])),
        image,
        K,
        camera_height_m,
        lines,
    )


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
        detector_threads: BlazePose graphs run at once (``PoseDetector``'s ``workers``; None:
            up to 4, one a core). One process per core (``annotate``'s workers) wants 1.
        align: HumanMoE's bodies posed onto BlazePose's landmarks, their build and distance
            kept (``BodyFitter.align``): the overlay lines up with the photo. About 0.3 s an
            image on a 2-core CPU; off, HumanMoE's poses as they come.
        find_faces: :meth:`detect` also looks for a person at every face (``FaceDetector``)
            no person found holds: the back rows of a group photo. About 0.1 s an image,
            plus 50-100 ms a face looked at.
        population: who the people are (``metrichmsr.population``): "auto" (as the floor
            shows them: "adults" where at least three stand on it and all are adult-sized,
            else "all"), "all" (anyone, the network's read of each one's age and height), or
            "adults" (everyone is an adult, their height pulled toward the adults' median;
            nobody made a child).
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
        detector_threads: int | None = None,
        align: bool = True,
        find_faces: bool = True,
        population: Population = POPULATION,
    ):
        self.population = check_population(population)
        if init not in ("humanmoe", "none"):
            raise ValueError(f"init must be 'humanmoe' or 'none', got {init!r}")
        if not refine and init == "none":
            raise ValueError("init='none' needs refine=True: nothing would fit the people")
        self.device = resolve_device(device)
        self.init_model = load_network(weights, self.device) if init == "humanmoe" else None
        self.refine = refine
        self.align = align
        self.depth = depth_backend(depth, str(self.device)) if isinstance(depth, str) else depth
        self.depth.load()  # a depth network loads with the other models, not on the first image
        segmentation = self.init_model is not None and self.init_model.config.silhouette_grid > 0
        self.detector = PoseDetector(
            min_person_px=min_person_px,
            max_people=max_people,
            min_score=min_score,
            segmentation=segmentation,
            workers=detector_threads,
        )
        self.face_detector = FaceDetector() if find_faces else None
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
            K: (3, 3) intrinsics in pixels or an ``Intrinsics``; None: EXIF, else the focal
                length the image's lines give (``scene.focal``), else the default FOV.
            boxes: optional (N, 4) person boxes [x0, y0, x1, y1] px; then exactly these people.
            exif: EXIF tags of an in-memory image, used for the focal length when K is None.
            camera_height_m: the camera's height above the floor in metres, when known (a
                mounted camera): the people standing on the floor are placed by it
                (:meth:`stand_on_floor`).
        """
        if camera_height_m is not None:
            camera_height_m = check_camera_height(camera_height_m)
        image_path = ""
        if isinstance(image, (str, Path)):
            image_path = str(image)
            image, exif = load_image(image)
        image = check_image(image)
        height, width = image.shape[:2]
        if boxes is not None:
            boxes = check_boxes(boxes, size=(width, height))
        result, contacts, _ = self._people_on_floor(image, _intrinsics(K, width, height, exif), boxes, camera_height_m)
        result.image_path = image_path
        result.scene = self.scene_depth(image, result.intrinsics.K, result.people, result.faces, result.floor, contacts)
        return result

    def _people_on_floor(
        self,
        image: np.ndarray,
        intrinsics: Intrinsics,
        boxes: np.ndarray | None,
        camera_height_m: float | None,
        estimate_camera: bool = True,
        detected: list | None = None,
        lines: ImageLines | None = None,
        adults_by_floor: bool = True,
    ) -> tuple[RecoveryResult, np.ndarray | None, ImageLines | None]:
        """:meth:`infer` without the scene depth: the result (people, floor), the foot contacts
        of :meth:`stand_on_floor` and the image's lines it used (None without people).
        ``estimate_camera``: default ``intrinsics`` are replaced by the focal length the image's
        lines give (``scene.focal``), where they tell it. ``detected``: the image's people
        when already found (a clip's, :meth:`_find_people`); default :meth:`detect`.
        ``lines``: the scene's lines when already found (a fixed camera's, in an earlier
        frame); default this image's, its people left out. ``adults_by_floor``: as
        :meth:`stand_on_floor`'s."""
        detected = self.detect(image, boxes=boxes) if detected is None else detected
        if estimate_camera and intrinsics.source == "default":  # neither the user nor EXIF: the lines may tell
            intrinsics = camera_from_lines(intrinsics, image, np.stack([o.bbox for o in detected]) if detected else None)
        result = RecoveryResult(
            image, "", intrinsics, faces=self.body.faces.cpu().numpy(), skeleton=self.body.skeleton, population=self.population
        )
        if boxes is not None:
            result.boxes_without_person = [i for i, o in enumerate(detected) if o.score == 0]
        people = self.fit_people([o for o in detected if o.score > 0], intrinsics.K, image=image)
        if boxes is None:  # the user's boxes are people by definition
            people = without_parts_read_as_far(people)
            if self.align or self.refine:  # a body posed onto the landmarks tells whether they are one person's
                people = without_unexplained(people, intrinsics.K)
        if lines is None and people:
            lines = scene_lines(image, intrinsics.K, np.stack([p.bbox for p in people]))
        result.people, result.floor, contacts = self.stand_on_floor(
            people, image, intrinsics.K, camera_height_m, lines, detected=boxes is None, adults_by_floor=adults_by_floor
        )
        return result, contacts, lines

    def track(
        self,
        frames: Iterable[Frame | np.ndarray],
        K: np.ndarray | Intrinsics | None = None,
        camera_height_m: float | None = None,
        static_camera: bool = True,
        fps: float = DEFAULT_FPS,
        tracker: Tracker | None = None,
        detect_every: int = DETECT_EVERY,
    ) -> Iterator[TrackedFrame]:
        """Follow the people of a clip: one :class:`~metrichmsr.tracks.TrackedFrame` per frame, as
        each is recovered (a live stream works; nothing is kept).

        Each frame's people are recovered as by :meth:`infer` (no scene depth) and placed on
        the floor (:meth:`stand_on_floor`). With ``static_camera`` (a fixed camera) the floors
        of the frames so far are pooled into one (``tracking.pooled_floor``) and everyone
        whose feet were seen is scaled about the camera to stand on it
        (``tracking.onto_floor_scales``, with the bodies of their new heights); otherwise
        each frame keeps its own floor. A fixed camera's scene keeps its straight lines, so they
        are looked for once, in the first frame with people (:meth:`stand_on_floor`'s
        ``lines``). Then the ``tracker`` (default a new
        ``tracking.Tracker``) assigns them track ids by where they stand on it.

        Args:
            frames: ``video_io.Frame``s (index, time, pixels), or (H, W, 3) uint8 RGB arrays
                taken as frames 0, 1, ... at ``fps``.
            K: (3, 3) intrinsics in pixels or an ``Intrinsics``; None: EXIF-less, the focal
                length the first frame's lines give (``scene.focal``), else the default field
                of view; one camera for the whole clip either way.
            camera_height_m: the camera's known height above the floor, metres.
            fps: frame rate of plain arrays, frames per second.
            detect_every: the frame is scanned for people on frames 0, ``detect_every``, ...;
                on the others the previous frame's people are looked for where they were
                (``PoseDetector.follow``: BlazePose's video mode), and whoever came in since is
                found at the next scan. 1: scan every frame. A fixed camera's scans look only
                where the picture moves (``PoseDetector.rescan``), except every
                ``FULL_SCAN_EVERY``-th, which looks everywhere (for whoever stood still and was
                lost).

        The positions are neither smoothed nor placed on the clip's final floor here:
        ``tracks.ClipTracks.finish`` does that once the clip has ended.
        """
        if camera_height_m is not None:
            camera_height_m = check_camera_height(camera_height_m)
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        tracker = Tracker() if tracker is None else tracker
        floors, weights, intrinsics, floor, lines = [], [], None, None, None
        boxes, landmarks2d = np.zeros((0, 4)), np.zeros((0, len(BLAZEPOSE_LANDMARK_NAMES), 3))
        motion = MovingPixels() if static_camera else None
        for i, frame in enumerate(frames):
            frame = frame if isinstance(frame, Frame) else Frame(i, i / fps, frame)
            image = check_image(frame.image)
            first = intrinsics is None
            intrinsics = intrinsics or _intrinsics(K, image.shape[1], image.shape[0], None)
            moving = motion.update(image) if motion is not None else None
            result, contacts, seen_lines = self._people_on_floor(
                image,
                intrinsics,
                None,
                camera_height_m,
                estimate_camera=first,
                detected=self._find_people(image, i, boxes, landmarks2d, detect_every, moving),
                lines=lines,
                adults_by_floor=not static_camera,
            )
            if static_camera:  # the scene's lines stay where they are: look for them once
                lines = seen_lines
            intrinsics = result.intrinsics  # the first frame's camera, estimated or not, is the clip's
            on_floor = np.zeros(len(result.people), dtype=bool)
            if not static_camera:
                floor = result.floor or floor  # a frame without one keeps the last
            else:
                if result.floor is not None:
                    floors.append(self._adults_floor(result, contacts))
                    weights.append(int(np.isfinite(contacts).all(axis=1).sum()))  # the people who placed it
                    floor = pooled_floor(floors, weights)
                if floor is not None:
                    result.people, on_floor = self._onto_floor(result.people, floor, contacts)
            roots = np.array([p.translation for p in result.people]).reshape(-1, 3)  # (0, 3) for nobody
            boxes = np.array([p.bbox for p in result.people]).reshape(-1, 4)
            landmarks2d = np.array([p.keypoints2d for p in result.people]).reshape(-1, *landmarks2d.shape[1:])
            clip_floor = floor if static_camera else None  # a moving camera's floors do not pin where people stand
            ids = tracker.update(frame.time_s, standing_positions(roots, boxes, on_floor, intrinsics.K, clip_floor), boxes)
            yield TrackedFrame(frame.index, frame.time_s, result, ids, floor, on_floor, appearances(image, boxes))

    def _adults_floor(self, result: RecoveryResult, contacts: np.ndarray) -> FloorPlane:
        """A fixed camera's frame floor for the clip's pooled one, with ``population`` "auto" and
        its height not known: where its people are all adult-sized (``population.all_adults``),
        its camera height scaled as a group of adults' (``population.adult_group_scale``). The clip's floor then
        places everyone, so each frame's people need not be made adults one by one as
        :meth:`stand_on_floor` makes a photo's: the PETS clip ran at 4.6 frames/s so, 5.3 this way."""
        if self.population != "auto" or result.floor.height_source in KNOWN_HEIGHT_SOURCES:
            return result.floor
        heights = np.array([p.height_m for p in result.people])
        scale = adult_group_scale(heights, standing_on(result.floor, contacts))
        return replace(result.floor, camera_height_m=result.floor.camera_height_m * scale)

    def _find_people(
        self,
        image: np.ndarray,
        index: int,
        boxes: np.ndarray,
        landmarks2d: np.ndarray,
        detect_every: int,
        moving: np.ndarray | None,
    ) -> list:
        """The people of a clip's frame ``index`` (:meth:`track`): the previous frame's, ``boxes``
        (N, 4) and ``landmarks2d`` (N, 33, 3), followed (``PoseDetector.follow``), except on a
        scan frame or with nobody to follow. Then the scan looks where ``moving`` (h, w) bool,
        a fixed camera's moving pixels, says the picture moves (and nobody followed stands),
        or everywhere: on every ``FULL_SCAN_EVERY``-th scan frame (the first included) and
        without ``moving``. So a fixed camera watching an empty scene costs little."""
        if index % detect_every and len(boxes):
            return self.detector.follow(image, boxes, landmarks2d)
        if moving is None or not index % (detect_every * FULL_SCAN_EVERY):
            return self.detect(image)
        return self.detector.rescan(image, boxes, moving, landmarks2d)

    def _onto_floor(
        self, people: list[PersonResult], floor: FloorPlane, contacts: np.ndarray | None
    ) -> tuple[list[PersonResult], np.ndarray]:
        """``people`` whose feet were seen (finite ``contacts`` (N, 3), from :meth:`stand_on_floor`)
        scaled about the camera to stand on a floor of known height (``tracking.onto_floor_scales``),
        given the bodies of their new heights; and (N,) bool, who stands on it."""
        if not people:
            return people, np.zeros(0, dtype=bool)
        seen = np.isfinite(contacts).all(axis=1) if contacts is not None else np.zeros(len(people), dtype=bool)
        feet = np.where(seen[:, None], foot_contacts(np.stack([p.joints3d for p in people]), floor.up), np.nan)
        scales, on_floor = onto_floor_scales(floor, feet)
        moved = np.flatnonzero(scales != 1.0)
        if len(moved):  # shared_floor_scale: this factor on top of the one the frame's own floor gave
            people = self._scaled(people, moved, scales[moved], "shared_floor_scale")
        return people, on_floor

    def stand_on_floor(
        self,
        people: list[PersonResult],
        image: np.ndarray,
        K: np.ndarray,
        camera_height_m: float | None = None,
        lines: ImageLines | None = None,
        detected: bool = True,
        adults_by_floor: bool = True,
    ) -> tuple[list[PersonResult], FloorPlane | None, np.ndarray | None]:
        """The floor under the people (``scene.placement.people_floor``), and the people brought onto it.

        With ``population`` "adults" everyone is first made an adult of the height
        ``population.adult_heights_m`` gives (``population_scale``), and the rules below make
        nobody younger, only shorter. With "auto" the steps run as "all", and again as
        "adults" where the people they bring onto the floor are all adult-sized
        (``population.all_adults``) and the floor's height is not known (that sets the
        scale); not without ``adults_by_floor`` (:meth:`track`'s fixed camera does it on the
        floor it pools).

        0. With ``detected`` (the people are the detector's, not the user's boxes), boxes over
           several people or things read as one body floating above the floor are no person
           (``scene.placement.floating_phantoms``): they are left out, the rest numbered
           again, and the floor placed again without them.
        1. Anyone whose feet sink below it is brought nearer and made younger to stand on it
           (``scene.floor.sunken_scales``; ``floor_scale`` < 1), anyone whose feet float well
           above it farther and made older or taller (``scene.floor.floating_scales``;
           ``floor_scale`` > 1). Their feet had tilted the floor where no lines set its tilt,
           so it is then placed again and they are brought onto that one.
        2. The people standing on it are moved toward the depth their feet agree on
           (``scene.floor.shared_floor_scales``; ``shared_floor_scale``), each given Anny's
           height parameter for their new height, and the floor is placed again. With
           ``camera_height_m`` (known, metres) the floor has that height and they are moved
           toward it instead, one person being enough.

        ``lines``: the image's lines (``scene.placement.scene_lines``), when already found.

        Returns (people, floor or None, (N, 3) contacts or None) as ``people_floor``.
        """
        # Moving people about the camera leaves their boxes, and so the image's lines, as they were.
        if lines is None and people:
            lines = scene_lines(image, K, np.stack([p.bbox for p in people]))
        population = "all" if self.population == "auto" else self.population
        placed, floor, contacts = self._floor_steps(people, image, K, camera_height_m, lines, detected, population)
        if self.population == "auto" and adults_by_floor and floor is not None and camera_height_m is None:
            heights = np.array([p.height_m for p in placed])
            if all_adults(heights, standing_on(floor, contacts)):
                placed, floor, contacts = self._floor_steps(people, image, K, camera_height_m, lines, detected, "adults")
        return placed, floor, contacts

    def _floor_steps(
        self,
        people: list[PersonResult],
        image: np.ndarray,
        K: np.ndarray,
        camera_height_m: float | None,
        lines: ImageLines | None,
        detected: bool,
        population: Literal["all", "adults"],
    ) -> tuple[list[PersonResult], FloorPlane | None, np.ndarray | None]:
        """:meth:`stand_on_floor`'s steps with the people taken to be ``population``."""
        if population == "adults" and people:
            heights = np.array([p.height_m for p in people])
            scales = adult_heights_m(heights) / heights
            people = self._scaled(people, np.arange(len(people)), scales, "population_scale", population)
        floor, contacts = _people_floor(people, image, K, camera_height_m, lines)
        if floor is None:
            return people, floor, contacts
        heights = np.array([p.height_m for p in people])
        if detected:
            phantom = floating_phantoms(np.stack([p.bbox for p in people]), floor, contacts, heights)
            if phantom.any():
                people, heights = _without(people, phantom), heights[~phantom]
                floor, contacts = _people_floor(people, image, K, camera_height_m, lines)
                if floor is None:
                    return people, floor, contacts
        scales = sunken_scales(floor, contacts) * floating_scales(floor, contacts, heights)
        off_floor = np.flatnonzero(scales != 1.0)
        if len(off_floor):
            moved = self._scaled(people, off_floor, scales[off_floor], "floor_scale", population)
            floor, contacts = _people_floor(moved, image, K, camera_height_m, lines)
            ratio = floor.below_ratio(contacts[off_floor]) if floor is not None else np.nan
            if np.isfinite(ratio).all():  # onto the floor placed again
                # The sunk still nearer than read, the floating still farther and no taller than a person.
                again = scales[off_floor] / ratio
                tallest = MAX_STANDING_HEIGHT_M / heights[off_floor]
                again = np.where(scales[off_floor] < 1.0, np.minimum(again, 1.0), np.clip(again, 1.0, tallest))
                moved = self._scaled(people, off_floor, again, "floor_scale", population)
                floor, contacts = _people_floor(moved, image, K, camera_height_m, lines)
            people = moved
            if floor is None:
                return people, floor, contacts
        scales = shared_floor_scales(floor, contacts)
        level = np.flatnonzero(scales != 1.0)
        if len(level):
            people = self._scaled(people, level, scales[level], "shared_floor_scale", population)
            floor, contacts = _people_floor(people, image, K, camera_height_m, lines)
        return people, floor, contacts

    def _scaled(
        self,
        people: list[PersonResult],
        which: np.ndarray,
        scales: np.ndarray,
        factor: ScaleFactor,
        population: Literal["all", "adults"] = "all",
    ) -> list[PersonResult]:
        """``people`` with those at indices ``which`` scaled about the camera by ``scales`` and
        given the body of their new height (``BodyModel.for_height``), the scale multiplied into
        their ``factor``: "floor_scale", the younger or older one (Anny's height parameter
        then makes up what growing up to 18 years does not; among ``population`` "adults" the
        height parameter alone); "shared_floor_scale", the same one taller or shorter;
        "population_scale", an adult (at least 18 years) of that height."""

        def tensor(values: list) -> torch.Tensor:
            return torch.as_tensor(np.stack(values), dtype=torch.float32, device=self.device)

        params = BodyParams(
            tensor([people[i].phenotype for i in which]),
            tensor([people[i].bone_rotvec for i in which]),
            tensor([people[i].global_rotation for i in which]),
            tensor([people[i].translation * scale for i, scale in zip(which, scales)]),
        )
        heights = tensor([people[i].height_m * scale for i, scale in zip(which, scales)])
        if factor == "population_scale":
            params.phenotype[:, _AGE] = params.phenotype[:, _AGE].clamp(min=ADULT_AGE)
        by_age = factor == "floor_scale" and population == "all"
        params.phenotype = self.body.for_height(params.phenotype, heights, "age" if by_age else "height")
        grown = torch.as_tensor(scales > 1.0, device=self.device) if by_age else None
        if grown is not None and grown.any():
            params.phenotype[grown] = self.body.for_height(params.phenotype[grown], heights[grown], "height")
        out = list(people)
        for i, scale, body in zip(which, scales, posed_bodies(self.body, params)):
            out[i] = replace(people[i], **body, **{factor: getattr(people[i], factor) * float(scale)})
        return out

    def scene_depth(
        self,
        image: np.ndarray,
        K: np.ndarray,
        people: list[PersonResult],
        faces: np.ndarray,
        floor: FloorPlane | None,
        contacts: np.ndarray | None,
    ) -> SceneResult | None:
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
        """People and their BlazePose landmarks in an (H, W, 3) uint8 image (``PoseDetector.detect``;
        without ``boxes``, also at the faces no person found holds)."""
        faces = self.face_detector.detect(image) if self.face_detector is not None and boxes is None else None
        return self.detector.detect(image, boxes=boxes, faces=faces)

    def fit_people(self, observations: list, K: np.ndarray, image: np.ndarray | None = None) -> list[PersonResult]:
        """Metric bodies for detected people (``PoseDetector.detect`` observations) under K (3, 3),
        every keypoint on its own ray through K (:meth:`body_params`, posed by ``result.posed_people``).

        ``image`` (H, W, 3) uint8: needed by a HumanMoE network with an image backbone (its crops).
        """
        if not observations:
            return []
        K_all = np.repeat(np.asarray(K)[None], len(observations), axis=0)  # (N, 3, 3), writable
        return posed_people(self.body, observations, self.body_params(observations, K_all, image=image))

    def body_params(
        self,
        observations: list,
        K: np.ndarray,
        landmarks2d: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        humanmoe: bool | None = None,
        refine: bool | None = None,
        image: np.ndarray | None = None,
    ) -> BodyParams:
        """Body parameters of N detected people: HumanMoE's prediction (posed onto the landmarks
        with the recoverer's ``align``), the fit, or the fit started from the prediction.

        Args:
            observations: N ``PoseDetector.detect`` observations (at least one).
            K: (N, 3, 3) each person's intrinsics, pixels.
            landmarks2d, boxes: (N, 33, 3) and (N, 4) px, what the network and the fit read of
                each person instead of the observations' own (a baseline's shifted view of
                them, ``bench.baselines``); their silhouettes and image crops stay the
                observations'.
            humanmoe, refine: override the recoverer's stages for this call (benchmarks compare them).
            image: (H, W, 3) uint8, for a HumanMoE network with an image backbone.
        """
        use_model = self.init_model is not None if humanmoe is None else humanmoe
        refine = self.refine if refine is None else refine
        if use_model and self.init_model is None:
            raise ValueError("this recoverer was made with init='none': no HumanMoE network loaded")
        if not (use_model or refine):
            raise ValueError("nothing to run: neither HumanMoE nor the fit")
        landmarks2d = np.stack([o.landmarks2d for o in observations]) if landmarks2d is None else landmarks2d
        boxes = np.stack([o.bbox for o in observations]) if boxes is None else boxes
        world = np.stack([o.world_landmarks for o in observations])
        init = None
        if use_model:
            with torch.no_grad():  # not inference_mode: the fit differentiates through what it starts from
                silhouette = silhouettes(observations, self.init_model.config.silhouette_grid)
                inputs = inputs_from_blazepose(landmarks2d, world, boxes, K, silhouette)
                inputs.crop = self._crops(observations, image)
                init = to_body_params(self.init_model(inputs.to(self.device)))
        if not (refine or self.align):
            return init
        evidence = evidence_from_blazepose(landmarks2d, world, boxes, K).to(self.device)
        K = torch.as_tensor(K, dtype=torch.float32, device=self.device)
        if refine:
            return self.fitter.fit(evidence, K, init=init)
        return self.fitter.align(evidence, K, init)

    def _crops(self, observations: list, image: np.ndarray | None) -> torch.Tensor | None:
        """HumanMoE's image crops of the people, None for a network without a backbone."""
        config = self.init_model.config
        if not config.backbone:
            return None
        if image is None:
            raise ValueError("this HumanMoE network reads image crops: pass the image")
        return crop_from_image(image, np.stack([o.bbox for o in observations]), config.backbone_image_size)

    def overlay(self, result: RecoveryResult) -> np.ndarray:
        """(H', W', 3) uint8: ``result``'s people drawn over its image with this recoverer's
        renderer, as ``overlay.png`` has them; the same size for every image of one size, with
        people or without (``render.Renderer.overlay``: capped at its ``max_side``)."""
        return self.renderer.overlay(result.image, result.intrinsics.K, [(p.vertices, result.faces) for p in result.people])

    def save(
        self, result: RecoveryResult, out_dir: str | Path, overwrite: bool = False, formats: Sequence[str] = DEFAULT_RIG_FORMATS
    ) -> Path:
        """``result.save`` with this recoverer's renderer (:meth:`RecoveryResult.save`; ``formats``:
        the rigged people's, ``defaults.RIG_FORMATS``)."""
        return result.save(out_dir, renderer=self.renderer, overwrite=overwrite, formats=formats)

    def close(self) -> None:
        self.detector.close()
        if self.face_detector is not None:
            self.face_detector.close()
        if self._renderer is not None:
            self._renderer.close()

    def __enter__(self) -> "Recoverer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
