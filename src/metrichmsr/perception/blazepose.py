"""People and their 2D/3D keypoints with BlazePose, from a tiny figure in the distance to a
person filling a 12000 x 9000 photo.

BlazePose (mediapipe ``PoseLandmarker``, full landmark model) is a two-stage network: a
face-keyed person detector on a 224 x 224 letterboxed view, then a 256 x 256 landmark network
on each detected person. Run on a whole photo it only finds people filling roughly a third of
the frame height or more, because a smaller person's face is a few pixels in the detector's
view. :class:`PoseDetector` therefore

1. shrinks the photo so its longer side is at most ``detect_max_side`` (the detection image);
2. runs BlazePose on the whole detection image and on overlapping square tiles at several
   scales, the smallest ``min_person_px / 0.35`` pixels so a ``min_person_px`` tall person fills
   35% of it, each tile resampled to 256 pixels (see ``_tiles.scan_tiles``);
3. turns every pose found into a box from its landmarks, in original pixels;
4. merges the duplicates that overlapping tiles and scales produce (``_tiles.same_person``);
5. refines each person on a square crop of the ORIGINAL image around its box, which gives
   accurate landmarks at full resolution (in a crowd, where the crop's detector may not single
   out that person, the scan's pose is kept), merges again and drops poses that are no person:
   a face with no torso seen, or a small pose inside a bigger, better seen person.

With person boxes given, only step 5 runs, once per box.
"""

import os
import queue
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from metrichmsr._quiet import native_output_silenced
from metrichmsr.defaults import MIN_PERSON_PX
from metrichmsr.errors import InputError
from metrichmsr.perception._model_bundle import build_pose_landmarker_bundle
from metrichmsr.perception._roi_graph import RoiLandmarker
from metrichmsr.perception._tiles import (
    REFINED_BOXES_DECIDE_IOU,
    Crop,
    box_containment,
    box_iou,
    clip_box,
    crop_square,
    landmarks_box,
    nested_in_bigger,
    scan_tiles,
    shrunk,
    suppress_duplicates,
)
from metrichmsr.perception.landmarks import BLAZEPOSE_LANDMARK_NAMES

_SCAN_SIZE = 256  # pixels: side every scan tile is resampled to (the landmark network's input)
_MIN_FILL = 0.35  # smallest person height / tile side the detector finds reliably
_FOLLOW_TILE_PAD = 0.5  # a followed person's scan tile: their box's side plus this much of it each way (2x)
_BOX_PAD = 0.1  # landmark boxes grow by this fraction of their size on each side
_REFINE_PAD = 0.25  # refinement crops add this fraction of the box's longer side on each side
_SEGMENTATION_SIZE = 128  # pixels: segmentations kept per person are shrunk to at most this side
_REFINE_SIZES = (256, 512)  # pixels: refinement crops keep their resolution within this range
# The refinement crop may hold a neighbour too; a few poses let us pick the one on the box
# instead of whichever the detector ranks first.
_REFINE_POSES = 3
# A pose on a refinement crop belongs to the box only when its landmark extent overlaps the
# box this much (IoU); below, it is a neighbour reaching into the crop.
_MATCH_IOU = 0.3
#: A scan tile is worth scanning where the picture moves (:meth:`PoseDetector.rescan`) when it
#: holds at least this times ``min_person_px`` squared moving pixels: a background model marks
#: a slow walker's edges only, a few dozen pixels for a smallest person.
_MIN_WHERE_FRACTION = 0.02
#: A person the scan finds is a followed one when this share of either's box lies in the other.
_INSIDE = 0.7
#: A followed person's moving pixels are those in their box grown by this share of its size a
#: side (:meth:`PoseDetector.rescan`): a walker's swinging arms and feet reach past the landmarks.
_EXPLAINED_PAD = 0.25
_SPECK_FRACTION = 1 / 3  # detections shorter than this times min_person_px are dropped
_SHOULDERS, _HIPS = [11, 12], [23, 24]  # in BLAZEPOSE_LANDMARK_NAMES
_TORSO = _SHOULDERS + _HIPS
#: A followed person's region (:meth:`PoseDetector.follow`) is the square about their hips
#: holding the circle BlazePose tracks a body by, grown by this factor (mediapipe's own video
#: mode grows it by 1.25). That circle is ~5% wider than the farthest of the earlier frame's
#: landmarks from the hips (the landmark network's own alignment points, on the PETS stills and
#: rendered clips: 1.03-1.07 times); framed tighter, the network places the landmarks so that
#: HumanMoE reads people ~1% farther than from the same frame's scan.
_TRACKED_REGION_SCALE = 1.25 * 1.05
_HEAD = slice(0, 11)  # nose, eyes, ears and mouth in BLAZEPOSE_LANDMARK_NAMES
#: A face's crops, widest first: this many face heights a side, the face at the top centre.
#: A wide crop shows more of the body, but in a crowd also other faces, which BlazePose's
#: detector may pick instead (the sample photo: 13 of 16 missed faces found at 3, 7 at 5, 1 at 9).
_FACE_CROP_FACES = (6.0, 3.0)
#: A pose holds a face when most of its head landmarks lie on the face's box grown by this
#: much of its width on each side.
_FACE_MARGIN = 0.2
#: A pose with fewer landmarks seen (visibility > 0.5) is no person to place: on `messi5.jpg` a
#: blur in the crowd seen by 2 landmarks became a giant standing in mid-air over the pitch;
#: none of the people found on 100 held-out renders, on the PETS stills (331) or in the sample
#: photo (24) has fewer.
_MIN_SEEN_LANDMARKS = 5


@dataclass
class PersonObservation:
    """One person as BlazePose sees it.

    bbox: (4,) float64 ``[x0, y0, x1, y1]``, pixels of the original image, pixel-centre
        convention (OpenCV): the visible landmarks' extent grown by 10% on each side, clipped
        to the image; with boxes given to :meth:`PoseDetector.detect`, the given box (clipped).
    score: in [0, 1], the mean landmark visibility: how much of the body is seen. Every person
        returned by a scan already passed BlazePose's detection and pose-presence tests at
        ``min_score``; 0.0 only for a given box where no pose was found.
    landmarks2d: (33, 3) float64, in :data:`BLAZEPOSE_LANDMARK_NAMES` order: x, y in original
        image pixels (pixel-centre convention) and the probability, in [0, 1], that the
        landmark is inside the image and not occluded (BlazePose visibility times presence,
        0 outside the image).
    world_landmarks: (33, 3) float64 BlazePose world landmarks in metres, origin between the
        hips, x right, y down, z away from the camera (as mediapipe gives them; their scale
        comes from an average body, not from this person).
    segmentation: (S, S) float32 person probability in [0, 1] from BlazePose's segmentation of
        the refinement crop (S <= 128); None unless the detector keeps segmentations, and
        where the pose came from the scan alone.
    segmentation_box: (4,) float64 outer edges ``[x0, y0, x1, y1]`` of that crop in original
        image pixels (pixel-centre coordinates: -0.5 is the image's left edge); None with it.
    """

    bbox: np.ndarray
    score: float
    landmarks2d: np.ndarray
    world_landmarks: np.ndarray
    segmentation: np.ndarray | None = None
    segmentation_box: np.ndarray | None = None


@dataclass
class _Pose:
    """A pose found on one crop, mapped to original pixels. ``extent`` is the box around all 33
    landmarks, occluded and out-of-crop ones included (BlazePose extrapolates them), clipped to
    the image: the whole person, used to place crops and to merge duplicates."""

    extent: np.ndarray
    landmarks2d: np.ndarray
    world_landmarks: np.ndarray
    segmentation: np.ndarray | None = None
    segmentation_box: np.ndarray | None = None
    whole: bool = False  # its observation's box is the extent, not the visible landmarks' box

    @property
    def score(self) -> float:
        return float(self.landmarks2d[:, 2].mean())

    @property
    def is_person(self) -> bool:
        """At least two of the shoulders and hips seen, and :data:`_MIN_SEEN_LANDMARKS` in all
        (a face alone, or a blur two landmarks happen to fit, is no one to place)."""
        seen = self.landmarks2d[:, 2] > 0.5
        return int(seen[_TORSO].sum()) >= 2 and int(seen.sum()) >= _MIN_SEEN_LANDMARKS

    def observation(self, bbox: np.ndarray | None, width: int, height: int) -> PersonObservation:
        """The public record; ``bbox`` None means the visible landmarks' box (the extent for a
        ``whole`` pose)."""
        if bbox is None and self.whole:
            bbox = self.extent
        elif bbox is None:
            visible = landmarks_box(self.landmarks2d[:, :2], self.landmarks2d[:, 2], _BOX_PAD)
            bbox = self.extent if visible is None else clip_box(visible, width, height)
        return PersonObservation(
            bbox, self.score, self.landmarks2d, self.world_landmarks, self.segmentation, self.segmentation_box
        )


def _placeholder(box: np.ndarray) -> PersonObservation:
    """The observation for a given box where no pose was found: score 0, every landmark at the
    box centre with visibility 0, world landmarks all zero (nan-free, so downstream arithmetic
    stays finite; filter on ``score``)."""
    landmarks = np.zeros((len(BLAZEPOSE_LANDMARK_NAMES), 3))
    landmarks[:, :2] = (box[:2] + box[2:]) / 2.0
    return PersonObservation(box, 0.0, landmarks, np.zeros_like(landmarks))


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image must have shape (H, W, 3) (RGB), got {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8 RGB, got dtype {image.dtype}")
    return np.ascontiguousarray(image)


def _check_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) float64 boxes clipped to the image; InputError when malformed or empty inside it."""
    try:
        boxes = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("boxes must be an (N, 4) array of [x0, y0, x1, y1] pixels") from None
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) [x0, y0, x1, y1], got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise InputError("boxes must be finite numbers")
    clipped = np.stack([clip_box(box, width, height) for box in boxes]) if len(boxes) else boxes
    for i, box in enumerate(clipped):
        if box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(f"boxes[{i}] = {boxes[i].tolist()} is empty inside the {width}x{height} image")
    return clipped


class PoseDetector:
    """Finds people and their BlazePose landmarks in RGB images of any size.

    The BlazePose graphs (two per worker, about 0.25 s each to build) are built once here,
    from the models inside the mediapipe wheel with nothing downloaded, and reused by every
    :meth:`detect` call; release them with :meth:`close` or use the detector as a context
    manager.

    Args:
        min_person_px: smallest person height to look for, in pixels of the detection image
            (the input shrunk so its longer side is at most ``detect_max_side``). Scan cost
            grows as ``1 / min_person_px ** 2``: with 60 px, 92 BlazePose calls on a
            1024 x 768 image, 327 on 1920 x 1440.
        max_people: most people returned by one call (the most confident ones).
        detect_max_side: longer side, in pixels, of the image the scan runs on; refinement
            always reads the original pixels.
        min_score: BlazePose's person-detection and pose-presence thresholds, in (0, 1).
        workers: BlazePose graphs run in parallel (mediapipe releases the GIL); default
            ``min(4, cpu count)``.
        segmentation: also keep BlazePose's segmentation of each refined person
            (``PersonObservation.segmentation``), for a HumanMoE with silhouette tokens.
    """

    def __init__(
        self,
        min_person_px: float = MIN_PERSON_PX,
        max_people: int = 20,
        detect_max_side: int = 1920,
        min_score: float = 0.5,
        *,
        workers: int | None = None,
        segmentation: bool = False,
    ):
        if not min_person_px > 0:
            raise InputError(f"min_person_px must be > 0, got {min_person_px}")
        if max_people < 1:
            raise InputError(f"max_people must be >= 1, got {max_people}")
        if detect_max_side < _SCAN_SIZE:
            raise InputError(f"detect_max_side must be >= {_SCAN_SIZE}, got {detect_max_side}")
        if not 0.0 < min_score < 1.0:
            raise InputError(f"min_score must be in (0, 1), got {min_score}")
        workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        self.min_person_px = float(min_person_px)
        self.max_people = int(max_people)
        self.detect_max_side = int(detect_max_side)
        self.min_score = float(min_score)

        bundle = build_pose_landmarker_bundle()
        # One graph per worker and per role: a graph runs one image at a time.
        self._scan_graphs: queue.SimpleQueue = queue.SimpleQueue()
        self._refine_graphs: queue.SimpleQueue = queue.SimpleQueue()
        self._all_graphs = []
        # The scan segments too: a small person the refinement crop misses keeps the scan's
        # pose, and HumanMoE (trained with a mask for nearly everyone) should read them alike.
        for graphs, num_poses, segment in (
            (self._scan_graphs, self.max_people, segmentation),
            (self._refine_graphs, _REFINE_POSES, segmentation),
        ):
            for _ in range(workers):
                with native_output_silenced():
                    graph = vision.PoseLandmarker.create_from_options(
                        vision.PoseLandmarkerOptions(
                            base_options=BaseOptions(model_asset_buffer=bundle),
                            running_mode=vision.RunningMode.IMAGE,
                            num_poses=num_poses,
                            min_pose_detection_confidence=self.min_score,
                            min_pose_presence_confidence=self.min_score,
                            output_segmentation_masks=segment,
                        )
                    )
                graphs.put(graph)
                self._all_graphs.append(graph)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blazepose")
        self._segmentation = bool(segmentation)
        self._workers = workers
        self._roi_graphs: queue.SimpleQueue | None = None  # built when a clip is first followed
        self._closed = False

    def detect(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        where: np.ndarray | None = None,
        faces: np.ndarray | None = None,
    ) -> list[PersonObservation]:
        """People in ``image`` with their landmarks.

        Args:
            image: (H, W, 3) uint8 RGB, any size.
            boxes: optional (N, 4) person boxes ``[x0, y0, x1, y1]`` in pixels (pixel-centre
                convention). Boxes reaching outside the image are clipped; a box empty inside
                the image is an error. When given, the scan is skipped and exactly one
                observation per box comes back, in the same order, with ``bbox`` the clipped
                box; where no pose is found on a box the observation is a placeholder with
                score 0, all visibilities 0 and landmarks at the box centre.
            where: optional (h, w) bool over the image at any size, where to look (a fixed
                camera's moving pixels, :meth:`rescan`): only the scan tiles holding at least
                ``_MIN_WHERE_FRACTION * min_person_px ** 2`` of these pixels (at the
                detection image's size) are scanned.
            faces: optional (F, 4+) face boxes ``[x0, y0, x1, y1, ...]`` in pixels
                (``perception.faces.FaceDetector``): a person is looked for again at each face
                no found person's head lies on.

        Returns:
            Without boxes, at most ``max_people`` observations sorted left to right by
            ``bbox[0]``; an empty list when nobody is found.

        Raises:
            InputError: bad image (not (H, W, 3) uint8) or bad boxes.
        """
        if self._closed:
            raise RuntimeError("PoseDetector.detect called after close()")
        image = _check_image(image)
        height, width = image.shape[:2]
        if boxes is not None:
            boxes = _check_boxes(boxes, width, height)
            poses = self._pool.map(lambda box: self._refine(image, box), boxes)
            return [
                _placeholder(box) if pose is None else pose.observation(box, width, height) for box, pose in zip(boxes, poses)
            ]

        # 1. The detection image.
        detection_image, scale = shrunk(image, self.detect_max_side)

        # 2-3. Scan the whole image and the tiles; each pose's extent is its box.
        tiles = scan_tiles(
            detection_image.shape[1],
            detection_image.shape[0],
            self.min_person_px / _MIN_FILL,
            _SCAN_SIZE,
        )
        if where is not None:
            tiles = _tiles_holding(tiles, where, detection_image.shape[1::-1], _MIN_WHERE_FRACTION * self.min_person_px**2)
        found = [
            pose
            for poses in self._pool.map(
                lambda tile: self._run(self._scan_graphs, detection_image, tile, (width, height)),
                tiles,
            )
            for pose in poses
        ]

        # 4. One candidate per person.
        candidates = [found[i] for i in _unique(found)]

        # 5. Refine on the original pixels. Where the crop shows nobody on the box, keep the
        # scan's pose: in a crowd the crop's detector may pick the neighbours.
        refined = self._pool.map(lambda c: self._refine(image, c.extent), candidates)
        poses = [c if pose is None else pose for c, pose in zip(candidates, refined)]
        # Refinement can pull two candidates onto one person, so merge again; then drop
        # what is no person: a face alone (a tile that saw only someone's head) or a small
        # pose inside a bigger, better seen person (a limb read as a person).
        poses = [poses[i] for i in _unique(poses, boxes_decide_iou=REFINED_BOXES_DECIDE_IOU)]
        nested = nested_in_bigger([p.extent for p in poses], [p.score for p in poses])
        people = [p for p, inside in zip(poses, nested) if not inside and p.is_person]
        # 6. Faces nobody found holds.
        if faces is not None:
            unheld = [face for face in np.asarray(faces, dtype=np.float64) if not any(_holds(p, face) for p in people)]
            at_faces = [pose for pose in self._pool.map(lambda face: self._at_face(image, face), unheld) if pose is not None]
            people += [at_faces[i] for i in _unique(at_faces)]
        observations = [pose.observation(None, width, height) for pose in people]
        # Nor is a speck a third as tall as the smallest person looked for: on the held-out
        # benchmark (min_person_px 60) every detection under 20 px tall was false.
        smallest_px = _SPECK_FRACTION * self.min_person_px / scale
        observations = [obs for obs in observations if obs.bbox[3] - obs.bbox[1] >= smallest_px]
        return sorted(observations[: self.max_people], key=lambda obs: obs.bbox[0])

    def follow(self, image: np.ndarray, boxes: np.ndarray, landmarks2d: np.ndarray | None = None) -> list[PersonObservation]:
        """The people of ``image`` found where an earlier frame had them (a clip's frames
        between scans; a whole-image scan costs ~10x more; people who came in since are left to
        the next :meth:`detect`).

        With ``landmarks2d`` this is BlazePose's own video mode: the landmark network alone on
        the region the earlier landmarks say the person fills (the square about their hips
        holding every landmark, grown by ``_TRACKED_REGION_SCALE``, turned upright), no
        detector. Without them, or where that region shows nobody, landmarks are looked for on
        a crop around the box, as :meth:`detect` refines its people.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (N, 4) ``[x0, y0, x1, y1]`` pixels: the earlier frame's ``bbox``es. Boxes that
                left the image are passed over.
            landmarks2d: optional (N, 33, 3) the earlier frame's ``landmarks2d`` of the same people.

        Returns:
            As :meth:`detect` without boxes: each ``bbox`` the visible landmarks' box (what the
            next frame follows from), a box where nobody is found any more dropped, two that
            found one person merged; sorted left to right.
        """
        if self._closed:
            raise RuntimeError("PoseDetector.follow called after close()")
        image = _check_image(image)
        height, width = image.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if landmarks2d is None:
            landmarks2d = [None] * len(boxes)
        elif len(landmarks2d) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(landmarks2d)} sets of landmarks")
        people = [(clip_box(box, width, height), seen) for box, seen in zip(boxes, landmarks2d)]
        people = [(box, seen) for box, seen in people if box[2] > box[0] and box[3] > box[1]]
        found = self._pool.map(lambda person: self._follow_one(image, *person), people)
        poses = [pose for pose in found if pose is not None]
        poses = [poses[i] for i in _unique(poses, boxes_decide_iou=REFINED_BOXES_DECIDE_IOU)]
        observations = [pose.observation(None, width, height) for pose in poses if pose.is_person]
        return sorted(observations[: self.max_people], key=lambda obs: obs.bbox[0])

    def _follow_one(self, image: np.ndarray, box: np.ndarray, landmarks2d: np.ndarray | None) -> _Pose | None:
        pose = self._in_tracked_region(image, landmarks2d) if landmarks2d is not None else None
        return pose if pose is not None else self._find_again(image, box)

    def _in_tracked_region(self, image: np.ndarray, landmarks2d: np.ndarray) -> _Pose | None:
        """The pose in the region BlazePose's video mode tracks a person seen at ``landmarks2d``
        (33, 3) in an earlier frame, or None."""
        height, width = image.shape[:2]
        xy = np.asarray(landmarks2d, dtype=np.float64)[:, :2]
        centre = xy[_HIPS].mean(axis=0)
        up = xy[_SHOULDERS].mean(axis=0) - centre
        side = 2.0 * _TRACKED_REGION_SCALE * float(np.linalg.norm(xy - centre, axis=1).max())
        rotation = np.pi / 2 - np.arctan2(-up[1], up[0])  # clockwise, 0 for a person upright
        with _borrowed(self._roi_graph_queue()) as graph:
            found = graph.run(image, centre, side, rotation)
        if found is None:
            return None
        xy = found.landmarks[:, :2]
        inside = np.all((xy >= -0.5) & (xy <= (width - 0.5, height - 0.5)), axis=1)
        seen = np.clip(found.landmarks[:, 2] * found.landmarks[:, 3], 0.0, 1.0)
        extent = clip_box(landmarks_box(xy, pad=_BOX_PAD), width, height)
        pose = _Pose(extent, np.column_stack([xy, np.where(inside, seen, 0.0)]), found.world_landmarks)
        if found.segmentation is None:
            return pose
        mask = _shrink(found.segmentation, _SEGMENTATION_SIZE)
        return replace(pose, segmentation=mask, segmentation_box=found.segmentation_box)

    def _roi_graph_queue(self) -> queue.SimpleQueue:
        if self._roi_graphs is None:
            self._roi_graphs = queue.SimpleQueue()
            for _ in range(self._workers):
                graph = RoiLandmarker(self._segmentation)
                self._roi_graphs.put(graph)
                self._all_graphs.append(graph)
        return self._roi_graphs

    def rescan(
        self, image: np.ndarray, boxes: np.ndarray, moving: np.ndarray, landmarks2d: np.ndarray | None = None
    ) -> list[PersonObservation]:
        """A fixed camera's people: the people of ``boxes`` found again (:meth:`follow`), and the
        scan of :meth:`detect` run only where the picture moves and nobody followed stands
        (each followed box grown by ``_EXPLAINED_PAD`` of its size a side). The tiles where
        nothing new moves are skipped: in a clip of a few walkers, most of them, walkers
        included (they are followed; a whole-frame :meth:`detect` every few scans sets their
        boxes afresh).

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (N, 4) the earlier frame's people's ``bbox``es, as for :meth:`follow`.
            moving: (h, w) bool over the image at any size, the frame's moving pixels
                (``perception.motion.MovingPixels``).
            landmarks2d: optional (N, 33, 3) their landmarks, as for :meth:`follow`.

        Returns:
            As :meth:`detect` without boxes. A person the scan finds is a followed one when
            their boxes overlap (IoU at least ``_MATCH_IOU``) or one lies mostly (``_INSIDE``)
            in the other.
        """
        followed = self.follow(image, boxes, landmarks2d)
        unexplained = _outside_boxes(moving, [o.bbox for o in followed], image.shape[1::-1])
        found = self.detect(image, where=unexplained) if np.any(unexplained) else []
        found = [
            o
            for o in found
            if all(
                box_iou(o.bbox, f.bbox) < _MATCH_IOU
                and box_containment(o.bbox, f.bbox) < _INSIDE
                and box_containment(f.bbox, o.bbox) < _INSIDE
                for f in followed
            )
        ]
        return sorted((followed + found)[: self.max_people], key=lambda obs: obs.bbox[0])

    def _find_again(self, image: np.ndarray, box: np.ndarray) -> _Pose | None:
        """The pose around an earlier frame's ``box``: refined on its crop, else (small people,
        whom the refinement crop often misses; :meth:`detect` keeps the scan's pose for them)
        the scan's detector on a tile twice the box's size, as a scan tile would show them."""
        pose = self._refine(image, box)
        if pose is not None:
            return pose
        tile = Crop.around_box(box, _FOLLOW_TILE_PAD, _SCAN_SIZE, _SCAN_SIZE)
        return _best_match(self._run(self._scan_graphs, image, tile, image.shape[1::-1]), box)

    def _at_face(self, image: np.ndarray, face: np.ndarray) -> _Pose | None:
        """The person whose head lies on ``face`` ((4+,) ``[x0, y0, x1, y1, ...]``), on the
        first of the crops ``_FACE_CROP_FACES`` face heights a side (the face at the top
        centre) that shows one, or None. Their box is their whole extent, hidden parts
        included, as a person's box is in HumanMoE's training: the visible head and shoulders
        alone read as a small person far away."""
        x0, y0, x1, y1 = face[:4]
        top = y0 - (y1 - y0) / 2
        for faces_wide in _FACE_CROP_FACES:
            side = faces_wide * (y1 - y0)
            box = np.array([(x0 + x1 - side) / 2, top, (x0 + x1 + side) / 2, top + side])
            crop = Crop.around_box(box, 0.0, *_REFINE_SIZES)
            poses = self._run(self._refine_graphs, image, crop, image.shape[1::-1])
            poses = [p for p in poses if p.is_person and _holds(p, face)]
            if poses:
                return replace(max(poses, key=lambda p: p.score), whole=True)
        return None

    def _refine(self, image: np.ndarray, box: np.ndarray) -> _Pose | None:
        """The pose on a square crop of the original ``image`` around the (4,) ``box``, or None.

        Of the poses found on the crop, the one whose extent overlaps ``box`` most is kept, if
        it overlaps at least ``_MATCH_IOU``.
        """
        crop = Crop.around_box(box, _REFINE_PAD, *_REFINE_SIZES)
        return _best_match(self._run(self._refine_graphs, image, crop, image.shape[1::-1]), box)

    def _run(
        self,
        graphs: queue.SimpleQueue,
        image: np.ndarray,
        crop: Crop,
        original_size: tuple[int, int],
    ) -> list[_Pose]:
        """BlazePose on ``crop`` of ``image``, a possibly shrunk copy of the original image of
        ``original_size`` (width, height) pixels; poses come back in original pixels.
        Landmarks outside the crop's in-image window get visibility 0: BlazePose extrapolates
        them, it does not see them."""
        patch = crop_square(image, crop)
        with _borrowed(graphs) as graph:
            result = graph.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=patch))
        window = crop.visible_window(image.shape[1], image.shape[0])
        width, height = original_size
        to_original = np.array(original_size, dtype=np.float64) / image.shape[1::-1]
        # The crop's outer edges in original pixels, pixel-centre coordinates.
        crop_box = np.array([crop.x0, crop.y0, crop.x0 + crop.side, crop.y0 + crop.side]) * np.tile(to_original, 2) - 0.5
        masks = result.segmentation_masks or [None] * len(result.pose_landmarks)
        poses = []
        for landmarks, world, mask in zip(result.pose_landmarks, result.pose_world_landmarks, masks):
            normalised = np.array([[lm.x, lm.y] for lm in landmarks], dtype=np.float64)
            edges = crop.to_source(normalised)
            inside = np.all((edges >= window[:2]) & (edges <= window[2:]), axis=1)
            seen = np.array([lm.visibility * lm.presence for lm in landmarks], dtype=np.float64)
            xy = edges * to_original - 0.5
            landmarks2d = np.column_stack([xy, np.where(inside, np.clip(seen, 0.0, 1.0), 0.0)])
            extent = clip_box(landmarks_box(xy, pad=_BOX_PAD), width, height)
            world_landmarks = np.array([[lm.x, lm.y, lm.z] for lm in world], dtype=np.float64)
            segmentation = None if mask is None else _shrink(mask.numpy_view(), _SEGMENTATION_SIZE)
            poses.append(_Pose(extent, landmarks2d, world_landmarks, segmentation, None if mask is None else crop_box))
        return poses

    def close(self) -> None:
        """Releases the BlazePose graphs and worker threads; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        for graph in self._all_graphs:
            graph.close()
        self._all_graphs.clear()

    def __enter__(self) -> "PoseDetector":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def _borrowed(graphs: queue.SimpleQueue):
    """A graph of ``graphs`` (a graph runs one image at a time), put back when done."""
    graph = graphs.get()
    try:
        yield graph
    finally:
        graphs.put(graph)


def _shrink(mask: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) float mask area-averaged to at most ``size`` pixels a side, as float32."""
    mask = np.asarray(mask, dtype=np.float32).squeeze()
    if max(mask.shape) <= size:
        return mask.copy()  # mediapipe reuses the buffer behind numpy_view
    scale = size / max(mask.shape)
    shape = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    return cv2.resize(mask, shape, interpolation=cv2.INTER_AREA)


def _outside_boxes(where: np.ndarray, boxes: list, size: tuple[int, int]) -> np.ndarray:
    """``where`` ((h, w) bool over an image of ``size`` (W, H)) without the pixels of ``boxes``
    (``[x0, y0, x1, y1]`` image pixels), each grown by ``_EXPLAINED_PAD`` of its size a side."""
    where = np.array(where, dtype=bool)
    sx, sy = where.shape[1] / size[0], where.shape[0] / size[1]
    for x0, y0, x1, y1 in boxes:
        pad_x, pad_y = _EXPLAINED_PAD * (x1 - x0), _EXPLAINED_PAD * (y1 - y0)
        where[
            max(int((y0 - pad_y) * sy), 0) : max(int(np.ceil((y1 + pad_y) * sy)), 0),
            max(int((x0 - pad_x) * sx), 0) : max(int(np.ceil((x1 + pad_x) * sx)), 0),
        ] = False
    return where


def _tiles_holding(tiles: list[Crop], where: np.ndarray, size: tuple[int, int], min_pixels: float) -> list[Crop]:
    """The ``tiles`` of an image of ``size`` (W, H) whose in-image window holds at least
    ``min_pixels`` of ``where`` ((h, w) bool over the image at any size, resized to ``size``).
    Every such tile, not just the one best centred on a moving blob: BlazePose's detector
    finds a person in some of the tiles around them and not in others."""
    where = np.asarray(where, dtype=np.uint8)
    if where.shape[::-1] != tuple(size):
        where = cv2.resize(where, size, interpolation=cv2.INTER_NEAREST)
    counts = cv2.integral(where)  # (H + 1, W + 1): counts[y, x] = where[:y, :x].sum()
    kept = []
    for tile in tiles:
        x0, y0, x1, y1 = tile.visible_window(*size).astype(int)
        if counts[y1, x1] - counts[y0, x1] - counts[y1, x0] + counts[y0, x0] >= min_pixels:
            kept.append(tile)
    return kept


def _holds(pose: _Pose, face: np.ndarray) -> bool:
    """Whether most of ``pose``'s head landmarks lie on ``face`` ((4+,) ``[x0, y0, x1, y1, ...]``),
    grown by ``_FACE_MARGIN`` of its width on each side."""
    margin = _FACE_MARGIN * (face[2] - face[0])
    head = pose.landmarks2d[_HEAD, :2]
    on = np.all((head >= face[:2] - margin) & (head <= face[2:4] + margin), axis=1)
    return bool(on.mean() > 0.5)


def _best_match(poses: list[_Pose], box: np.ndarray) -> _Pose | None:
    """The pose whose extent overlaps ``box`` most, if it overlaps at least ``_MATCH_IOU``."""
    overlaps = [box_iou(pose.extent, box) for pose in poses]
    return poses[int(np.argmax(overlaps))] if overlaps and max(overlaps) >= _MATCH_IOU else None


def _unique(poses: list[_Pose], boxes_decide_iou: float = 1.0) -> list[int]:
    """Indices of ``poses`` left after merging duplicates (``_tiles.suppress_duplicates``), most visible first."""
    return suppress_duplicates(
        [pose.extent for pose in poses],
        [pose.landmarks2d for pose in poses],
        [pose.score for pose in poses],
        boxes_decide_iou,
    )
