"""What `track` returns and writes: the video output contract (``docs/tracks.md``).

``TrackedFrame`` is one frame as ``Recoverer.track`` yields it. ``ClipTracks`` keeps a clip's
people light as the frames come (boxes, positions, joints; no meshes, no images, so a long
clip fits in memory), ``finish`` puts a fixed camera's people on the clip's one floor, joins
the broken tracks of one person, drops glimpses and smooths every track, and ``save`` writes ``tracks.json``, ``tracks.csv``,
``trajectories.png`` and, when asked, the people moving on Anny's skeleton: the animated
``scene.glb`` and one BVH file per track (``track_<id>.bvh``). Camera frame (OpenCV axes),
metres, pixels, seconds throughout.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metrichmsr._outputs import staged_output
from metrichmsr.body import Skeleton
from metrichmsr.camera import Intrinsics
from metrichmsr.defaults import POPULATION
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.result import RecoveryResult
from metrichmsr.scene.export import OPENCV_TO_GLTF, floor_prop, frustum_prop
from metrichmsr.scene.floor import FloorPlane, camera_pitch_roll_deg, foot_contacts
from metrichmsr.scene.rig_export import BvhSkeleton, RigMotion, animated_glb, bvh_pose, bvh_text, check_formats
from metrichmsr.tracking import (
    MIN_BOX_HEIGHT_M,
    MIN_TRACK_FRAMES,
    POSE_SMOOTHING_S,
    TrackSpan,
    floor_axes,
    floor_coordinates,
    horizontal,
    relinked,
    smooth_poses,
    smooth_positions,
    standing_positions,
)
from metrichmsr.viewer import write_view_html

SCHEMA = "metrichmsr.tracks/1"
CSV_COLUMNS = ("frame", "time_s", "track_id", "x_m", "y_m", "height_m", "cam_x_m", "cam_y_m", "cam_z_m", "on_floor")


@dataclass
class TrackedFrame:
    """One frame of a clip, as ``Recoverer.track`` yields it.

    ``result``: the frame's people (``RecoveryResult``, no scene depth), placed on ``floor``;
    ``track_ids`` (N,) int, each person's track; ``floor``: the floor they were placed on (a
    fixed camera's pooled over the frames so far, or this frame's; None before any);
    ``on_floor`` (N,) bool: who was scaled onto a fixed camera's pooled floor; ``looks`` (N, D):
    what each looked like (``tracking.appearances``), None when unknown.
    """

    index: int
    time_s: float
    result: RecoveryResult
    track_ids: np.ndarray
    floor: FloorPlane | None
    on_floor: np.ndarray
    looks: np.ndarray | None = None


@dataclass
class TrackedPerson:
    """One person in one frame: box (4,) px, detection score, hip midpoint (3,) m, standing
    height m, joints (23, 3) m (``JOINT_NAMES``), and whether they stand on the pooled floor.

    ``pose``, kept only for the rigged files (``ClipTracks.formats``): the root bone's head less
    the hip midpoint (3,) and every bone's world rotation (104, 3, 3), glTF frame
    (``scene.rig_export.bvh_pose``); the root follows the hip midpoint wherever
    :meth:`ClipTracks.finish` moves it. ``look``: what they looked like (``tracking.appearances``),
    for joining the tracks of one person once the clip has ended.
    """

    track_id: int
    bbox: np.ndarray
    score: float
    translation: np.ndarray
    height_m: float
    joints3d: np.ndarray
    on_floor: bool
    pose: tuple[np.ndarray, np.ndarray] | None = None
    look: np.ndarray | None = None


@dataclass
class FrameRecord:
    """A frame's people, kept light; ``floor``: the floor they were placed on (see :class:`TrackedFrame`)."""

    index: int
    time_s: float
    people: list[TrackedPerson]
    floor: FloorPlane | None


@dataclass
class ClipTracks:
    """A clip's tracked people: :meth:`add` each frame, :meth:`finish` once, then :meth:`save`.

    Args:
        intrinsics: the camera.
        size: (W, H) px of the frames.
        fps: the clip's frame rate; ``every``: every how many frames were processed.
        static_camera: one floor for the whole clip (``Recoverer.track``'s ``static_camera``).
        input_path: the clip as the user named it.
        population: who the people were taken to be (``Recoverer``'s ``population``).
        formats: the people moving on Anny's skeleton (``defaults.RIG_FORMATS``): ``"glb"``
            the animated ``scene.glb`` (:meth:`scene_glb`), ``"bvh"`` ``track_<id>.bvh``
            (:meth:`bvh_text`). Either keeps each person's pose (4 kB a person a frame) and
            each track's first body, so needs the frames' skeleton and people's rigs.
    """

    intrinsics: Intrinsics
    size: tuple[int, int]
    fps: float
    every: int = 1
    static_camera: bool = True
    input_path: str = ""
    population: str = POPULATION  # who the people were taken to be (``metrichmsr.population``)
    frames: list[FrameRecord] = field(default_factory=list)
    floor: FloorPlane | None = None  # a fixed camera's floor, pooled over every frame so far
    floor_frames: int = 0  # how many frames placed a floor
    finished: bool = False
    formats: tuple[str, ...] = ()
    # Each track's rest body, its first frame's: (V, 3) rest vertices and (104, 4, 4) rest bone poses, Anny frame.
    rests: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    skeleton: Skeleton | None = None  # Anny's rig and the mesh's (F, 3) faces, for the rigged files
    faces: np.ndarray | None = None
    # Seconds: the pose smoothing's Gaussian (``tracking.smooth_poses``); 0 leaves poses as read.
    pose_smoothing_s: float = POSE_SMOOTHING_S

    def __post_init__(self):
        check_formats(self.formats)

    def add(self, tracked: TrackedFrame) -> None:
        """Keep one frame's people (the meshes and the image are dropped)."""
        looks = [None] * len(tracked.result.people) if tracked.looks is None else list(tracked.looks)
        people = [
            TrackedPerson(int(k), p.bbox, float(p.score), p.translation, float(p.height_m), p.joints3d, bool(f), look=look)
            for k, p, f, look in zip(tracked.track_ids, tracked.result.people, tracked.on_floor, looks)
        ]
        if self.formats and people:
            if tracked.result.skeleton is None or any(p.rig is None for p in tracked.result.people):
                raise ValueError("rigged files need the frames' skeleton and every person's rig (as Recoverer.track gives them)")
            self.skeleton, self.faces = tracked.result.skeleton, tracked.result.faces
            for person, recovered in zip(people, tracked.result.people):
                root, rotations = bvh_pose(recovered.rig)
                person.pose = (root - OPENCV_TO_GLTF * person.translation, rotations.astype(np.float32))
                if person.track_id not in self.rests:
                    rig = recovered.rig
                    self.rests[person.track_id] = (np.asarray(rig.rest_vertices, np.float32), np.asarray(rig.rest_bone_poses))
        self.frames.append(FrameRecord(tracked.index, tracked.time_s, people, tracked.floor))
        self.floor_frames += tracked.result.floor is not None
        if self.static_camera:
            self.floor = tracked.floor

    def finish(self) -> None:
        """After the last frame: the people of a fixed camera onto the clip's final floor; a fixed
        camera's tracks of one person joined under the first one's id (``tracking.relinked``);
        tracks seen in fewer than ``tracking.MIN_TRACK_FRAMES`` frames, and a fixed camera's
        whose boxes stand under ``tracking.MIN_BOX_HEIGHT_M`` tall on the floor, dropped; then
        every track smoothed over time: its positions (``tracking.smooth_positions``), then its
        pose about them (``tracking.smooth_poses``: the joints, and the rig's bones when kept).

        The frames were placed on the floor pooled over the frames before them; the people
        standing on it are now scaled about the camera onto the floor pooled over them all
        (a uniform scale of joints, position and height, a few percent at most once the pool
        has settled; their meshes are not kept, so no body is posed again). Smoothing moves
        each person's joints with their hip midpoint, along the floor only when there is one
        floor; a frame where a fixed camera's person was not on the floor is left out of their
        track's smoothing (the motion model bridges it)."""
        if self.finished:
            return
        self.finished = True
        if self.static_camera and self.floor is not None:
            for person in (p for frame in self.frames for p in frame.people if p.on_floor):
                ratio = float(self.floor.below_ratio(foot_contacts(person.joints3d[None], self.floor.up)[0]))
                if np.isfinite(ratio) and ratio > 0:
                    person.translation, person.joints3d = person.translation / ratio, person.joints3d / ratio
                    person.height_m /= ratio
        one_floor = self.static_camera and self.floor is not None
        if one_floor:
            self._relink()
        spans = self._spans() if one_floor else {}
        for track_id, seen in self.tracks().items():
            glimpse = len(seen) < MIN_TRACK_FRAMES  # found in a frame or two, joined to nobody
            small = track_id in spans and np.median(spans[track_id].box_heights_m) < MIN_BOX_HEIGHT_M
            if glimpse or small:
                dropped = {id(person) for _, person in seen}
                for frame, _ in seen:
                    frame.people = [p for p in frame.people if id(p) not in dropped]
                self.rests.pop(track_id, None)
        for seen in self.tracks().values():
            # On one floor, only the people standing on it are smoothed: the others' bodies are
            # misread (tracking.standing_positions), and would drag their neighbours along.
            seen = [(frame, person) for frame, person in seen if person.on_floor or not one_floor]
            if not seen:
                continue
            times = np.array([frame.time_s for frame, _ in seen])
            roots = np.stack([p.translation for _, p in seen])
            if one_floor:  # along the floor only: the feet stay on it
                standing = horizontal(roots, self.floor.up)
                shifts = horizontal(smooth_positions(times, standing) - standing, self.floor.up)
            else:
                shifts = smooth_positions(times, roots) - roots
            for (_, person), shift in zip(seen, shifts):
                person.translation, person.joints3d = person.translation + shift, person.joints3d + shift
        if self.pose_smoothing_s > 0:
            for seen in self.tracks().values():
                self._smooth_poses([person for _, person in seen], np.array([frame.time_s for frame, _ in seen]))

    def _smooth_poses(self, people: list[TrackedPerson], times_s: np.ndarray) -> None:
        """One track's joints about its hip midpoint, and its rig's pose when kept, smoothed over
        time (``tracking.smooth_poses``). Each frame keeps its own size: the pose is smoothed
        in units of the person's height, so a frame scaled onto the floor keeps its feet there."""
        offsets = np.stack([p.joints3d - p.translation for p in people])
        rigged = all(p.pose is not None for p in people)
        if rigged:  # the root bone's offset from the hips moves with the pose too
            offsets = np.concatenate([offsets, np.stack([p.pose[0] for p in people])[:, None]], axis=1)
        heights = np.array([p.height_m for p in people], dtype=np.float64)
        heights = np.where(np.isfinite(heights) & (heights > 0), heights, 1.0)[:, None, None]
        rotations = np.stack([p.pose[1] for p in people]) if rigged else None
        shapes, rotations = smooth_poses(times_s, offsets / heights, rotations, self.pose_smoothing_s)
        offsets = shapes * heights
        for k, person in enumerate(people):
            person.joints3d = person.translation + offsets[k, : len(person.joints3d)]
            if rigged:
                person.pose = (offsets[k, -1].astype(person.pose[0].dtype), rotations[k])

    def _spans(self) -> dict[int, TrackSpan]:
        """Track id -> where it stood on the clip's floor (``tracking.standing_positions``, as the
        tracker saw it), how tall its box stood there and what it looked like."""
        spans = {}
        for track_id, seen in self.tracks().items():
            people = [person for _, person in seen]
            boxes = np.stack([p.bbox for p in people])
            standing = standing_positions(
                np.stack([p.translation for p in people]), boxes, [p.on_floor for p in people], self.intrinsics.K, self.floor
            )
            box_heights_m = (boxes[:, 3] - boxes[:, 1]) * np.linalg.norm(standing, axis=1) / self.intrinsics.fy
            looks = None if any(p.look is None for p in people) else np.stack([p.look for p in people])
            spans[track_id] = TrackSpan(np.array([frame.time_s for frame, _ in seen]), standing, box_heights_m, looks)
        return spans

    def _relink(self) -> None:
        """Give each chain of tracks that are one person (``tracking.relinked``) its first track's id."""
        tracks, spans = self.tracks(), self._spans()
        ids = list(spans)
        for track_id, first in zip(ids, relinked(list(spans.values()))):
            if ids[first] != track_id:
                for _, person in tracks[track_id]:
                    person.track_id = ids[first]
                self.rests.pop(track_id, None)  # the chain's body is its first track's

    def tracks(self) -> dict[int, list[tuple[FrameRecord, TrackedPerson]]]:
        """Track id -> its (frame, person) in time order."""
        out: dict[int, list[tuple[FrameRecord, TrackedPerson]]] = defaultdict(list)
        for frame in self.frames:
            for person in frame.people:
                out[person.track_id].append((frame, person))
        return dict(sorted(out.items()))

    def floor_xy(self, frame: FrameRecord, person: TrackedPerson) -> np.ndarray | None:
        """(2,) where the person stands on the floor (x right, y forward, metres;
        ``tracking.floor_axes``); None without a floor.

        A fixed camera's: on the clip's floor, where the tracker saw them stand
        (``tracking.standing_positions``: under their hip midpoint when they stand on the floor,
        else where the bottom of their box meets it). A moving camera's: under their hip
        midpoint on the frame's floor."""
        if not self.static_camera:
            return floor_coordinates(person.translation, frame.floor) if frame.floor is not None else None
        if self.floor is None:
            return None
        standing = standing_positions(person.translation, person.bbox, [person.on_floor], self.intrinsics.K, self.floor)
        return floor_coordinates(standing[0], self.floor)

    def to_json(self) -> dict:
        """``tracks.json``'s content (schema ``metrichmsr.tracks/1``)."""

        def person_json(frame: FrameRecord, person: TrackedPerson) -> dict:
            xy = self.floor_xy(frame, person)
            return {
                "track_id": person.track_id,
                "bbox": _floats(person.bbox),
                "score": round(person.score, 4),
                "translation": _floats(person.translation),
                "height_m": round(person.height_m, 4),
                "floor_xy_m": _floats(xy) if xy is not None else None,
                "on_floor": person.on_floor,
                "joints3d": {name: _floats(p) for name, p in zip(JOINT_NAMES, person.joints3d)},
            }

        frames = []
        for frame in self.frames:
            record = {"index": frame.index, "time_s": round(frame.time_s, 4)}
            if not self.static_camera:
                record["floor"] = _floor_json(frame.floor)
            frames.append({**record, "people": [person_json(frame, p) for p in frame.people]})
        width, height = self.size
        return {
            "schema": SCHEMA,
            "input": {"path": self.input_path, "width": width, "height": height, "every": self.every},
            "camera": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.intrinsics.to_dict().items()},
            "fps": round(self.fps, 4),
            "static_camera": self.static_camera,
            "population": self.population,
            "floor": {**_floor_json(self.floor), "frames": self.floor_frames} if self.floor is not None else None,
            "tracks": [
                {
                    "track_id": track_id,
                    "first_frame": seen[0][0].index,
                    "last_frame": seen[-1][0].index,
                    "frames": len(seen),
                    "height_m": round(float(np.median([p.height_m for _, p in seen])), 4),
                }
                for track_id, seen in self.tracks().items()
            ],
            "frames": frames,
        }

    def write_csv(self, path: Path) -> None:
        """``tracks.csv``: one row per person per frame (:data:`CSV_COLUMNS`; x_m, y_m empty without a floor)."""
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(CSV_COLUMNS)
            for frame in self.frames:
                for person in frame.people:
                    xy = self.floor_xy(frame, person)
                    floor_cells = [f"{v:.4f}" for v in xy] if xy is not None else ["", ""]
                    writer.writerow(
                        [frame.index, f"{frame.time_s:.4f}", person.track_id, *floor_cells, f"{person.height_m:.4f}"]
                        + [f"{v:.4f}" for v in person.translation]
                        + [int(person.on_floor)]
                    )

    def plot(self, path: Path) -> None:
        """``trajectories.png``: the floor from above (x right, y forward, metres), one line per
        track, the camera at the origin with its horizontal field of view."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MultipleLocator

        fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
        colours = plt.get_cmap("tab20")
        reach = 1.0
        for n, (track_id, seen) in enumerate(self.tracks().items()):
            xy = [self.floor_xy(frame, person) for frame, person in seen]
            xy = np.array([v for v in xy if v is not None]).reshape(-1, 2)
            if not len(xy):
                continue
            colour = colours((2 * n) % 20 + (n // 10) % 2)  # the 10 strong shades first, then the light ones
            ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, lw=1.6, marker="." if len(xy) < 3 else None, ms=5)
            ax.annotate(str(track_id), xy[-1], fontsize=7, color=colour, xytext=(2, 2), textcoords="offset points")
            reach = max(reach, float(np.abs(xy).max()))
        floor = self.floor if self.static_camera else next((f.floor for f in reversed(self.frames) if f.floor), None)
        if floor is not None:  # the field of view's edges along the image's middle row
            right, forward = floor_axes(floor)
            K_inv = np.linalg.inv(self.intrinsics.K)
            for u in (-0.5, self.size[0] - 0.5):
                ray = K_inv @ np.array([u, self.intrinsics.cy, 1.0])
                edge = np.array([ray @ right, ray @ forward])
                if edge[1] > 0:
                    edge = edge / edge[1] * reach * 1.1
                    ax.plot([0, edge[0]], [0, edge[1]], ":", color="0.5", lw=1)
        ax.plot([0], [0], marker="^", color="k", ms=10, ls="")
        ax.annotate("camera", (0, 0), fontsize=8, xytext=(6, -10), textcoords="offset points")
        ax.set_aspect("equal")
        ax.autoscale()
        step = 1.0 if reach <= 25 else 5.0
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.yaxis.set_major_locator(MultipleLocator(step))
        ax.grid(True, color="0.85", lw=0.6)
        ax.set_xlabel("x: right of the camera (m)")
        ax.set_ylabel("y: ahead of the camera (m)")
        where = (
            f"one floor, camera {self.floor.camera_height_m:.2f} m above it"
            if self.static_camera and self.floor is not None
            else "each frame's floor under the moving camera"
        )
        ax.set_title(f"{len(self.tracks())} tracks over {len(self.frames)} frames; {where}", fontsize=10)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """:meth:`write` into ``out_dir`` atomically (``_outputs.staged_output``: a hidden folder
        that replaces ``out_dir`` once complete; the same folder rules as ``RecoveryResult.save``)."""
        with staged_output(Path(out_dir), overwrite) as staging:
            self.write(staging)
        return Path(out_dir)

    def write(self, folder: Path) -> None:
        """Write ``tracks.json``, ``tracks.csv``, ``trajectories.png``, the viewer page
        ``view.html`` (``viewer.write_view_html``) and the :attr:`formats` asked for
        (``scene.glb``, :meth:`scene_glb`; ``track_<id>.bvh``, :meth:`bvh_text`) into ``folder``
        (a staged output folder). Calls :meth:`finish` first."""
        self.finish()
        (folder / "tracks.json").write_text(json.dumps(self.to_json(), indent=1))
        self.write_csv(folder / "tracks.csv")
        self.plot(folder / "trajectories.png")
        if "glb" in self.formats:
            (folder / "scene.glb").write_bytes(self.scene_glb())
        if "bvh" in self.formats:
            for track_id, seen in self.tracks().items():
                (folder / f"track_{track_id}.bvh").write_text(self.bvh_text(seen))
        write_view_html(folder)

    def bvh_text(self, seen: list[tuple[FrameRecord, TrackedPerson]]) -> str:
        """One track's BVH file (``scene.rig_export.bvh_text``): its first frame's rest skeleton,
        one motion frame per processed frame from its first to its last (every ``every``-th of
        the clip, so ``every / fps`` seconds apart), a frame it was not seen in holding the
        last pose it was seen in; the root at its (finished, smoothed) hip midpoint."""
        indices = range(seen[0][0].index, seen[-1][0].index + 1, self.every)
        roots, rotations, _ = self._held_poses(seen, indices)
        skeleton = BvhSkeleton.of(self.skeleton, self.rests[seen[0][1].track_id][1])
        return bvh_text(skeleton, roots, rotations, self.every / self.fps)

    def scene_glb(self) -> bytes:
        """``scene.glb``: the people moving over the clip (``scene.rig_export.animated_glb``),
        the camera's frustum and a fixed camera's floor, glTF frame (scene.glb's: the OpenCV
        camera frame with y and z negated), metres; its animation's time is the clip's.

        One skinned body per track (``track_<id>``) on its first frame's rest skeleton, a
        keyframe at every frame (``time_s``) from its first to its last, posed as the BVH
        file is (:meth:`bvh_text`: a frame it was not seen in holds its last pose; the root at
        the finished hip midpoint) and scaled to the frame's standing height (``height_m``),
        hidden before its first frame and from the frame after its last. A moving camera's
        people are where they were relative to the camera in each frame, and there is no
        floor (each frame has its own)."""
        self.finish()
        times = {frame.index: frame.time_s for frame in self.frames}
        motions = []
        for track_id, seen in self.tracks().items():
            indices = [i for i in times if seen[0][0].index <= i <= seen[-1][0].index]
            roots, rotations, scales = self._held_poses(seen, indices)
            rest_vertices, rest_bone_poses = self.rests[track_id]
            keys = np.array([times[i] for i in indices])
            motions.append(RigMotion(rest_vertices, rest_bone_poses, keys, roots, rotations, scales))
        props = [("camera", *frustum_prop(self.intrinsics.K, self.size))]
        if self.static_camera and self.floor is not None:
            centres = [person.translation for frame in self.frames for person in frame.people]
            props.append(("floor", *floor_prop(self.floor, centres)))
        return animated_glb(
            motions,
            self.skeleton,
            self.faces,
            np.array(list(times.values())),
            props,
            names=[f"track_{track_id}" for track_id in self.tracks()],
        )

    def _held_poses(self, seen: list[tuple[FrameRecord, TrackedPerson]], indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A track at frame ``indices`` (increasing, from its first frame to its last): the root
        bone's head (T, 3) and every bone's world rotation (T, 104, 3, 3), glTF frame
        (``TrackedPerson.pose``), and the scale (T,) that gives its first frame's rest body the
        frame's standing height (``height_m``: each frame reads the body again, and
        :meth:`finish` scales a fixed camera's people onto the floor); a frame it was not seen
        in holds the last pose it was seen in."""
        rest_height_m = np.ptp(self.rests[seen[0][1].track_id][0][:, 2])  # Anny is z-up
        roots, rotations, scales, last = [], [], [], 0
        for index in indices:
            while last + 1 < len(seen) and seen[last + 1][0].index <= index:
                last += 1
            person = seen[last][1]
            scale = person.height_m / rest_height_m
            roots.append(OPENCV_TO_GLTF * person.translation + scale * person.pose[0])
            rotations.append(person.pose[1])
            scales.append(scale)
        return np.stack(roots), np.stack(rotations), np.array(scales)


def _floor_json(floor: FloorPlane | None) -> dict | None:
    if floor is None:
        return None
    pitch, roll = camera_pitch_roll_deg(floor.up)
    return {
        "up": _floats(floor.up, 6),
        "camera_height_m": round(float(floor.camera_height_m), 4),
        "up_source": floor.up_source,
        "camera_height_source": floor.height_source,
        "camera_pitch_deg": round(pitch, 2),
        "camera_roll_deg": round(roll, 2),
    }


def _floats(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]
