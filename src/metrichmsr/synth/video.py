"""Synthetic clips of Anny people walking before a fixed camera, with their true trajectories.

Deterministic per seed; seeds from HELD_OUT_SEED_START up are the held-out benchmark split, as
for still images. A clip is one static camera over a floor (``VideoConfig``: 35-90 deg
horizontal field of view, 5-35 deg pitched down, 1.5-8 m above the floor, little roll) and 2-6
people from Anny's population prior walking on it at 0.8-1.6 m/s, on straight paths or on
circles (a constant turn rate of 10-40 deg/s, either way). Their gait is the "walking" pose
family made periodic (``synth.poses.walking_gait``), its phase advancing with the distance
walked; they face along their velocity, and in every frame their lowest point is on the floor,
as ``synth.scenes`` puts the people of a still. Each path is drawn through a point in view at
the middle of the clip, so people are in view for at least half of it (some come in or
leave), never behind the camera, and never nearer than 0.8 m to each other. Every frame is
rendered by ``synth.people.render_people`` with the clip's seed and one wall distance, so the
room, the light, the image noise and the clothes stay the same from frame to frame.

On disk (:func:`write_clips`): ``OUT/synth.json`` (``"kind": "video"``, the seeds and the
config), and per clip ``OUT/<seed>/frames/000000.png, ...`` and ``OUT/<seed>/truth.npz``:

| key | shape | what |
| --- | --- | --- |
| K | (3, 3) | intrinsics, pixels of the frames |
| fps | () | frame rate; frame f is at f / fps seconds |
| floor_up, floor_camera_height_m | (3,), () | the floor plane (``scene.floor.FloorPlane``) |
| frame | (M,) int | frame index; one row per person per frame, everyone in every frame, seen or not |
| person_id | (M,) int | who, 0 .. N-1, the same all clip long |
| root | (M, 3) | hip midpoint, camera frame (OpenCV), metres |
| joints | (M, 23, 3) | ``metrichmsr.body.JOINT_NAMES`` order, camera frame, metres |
| height_m | (M,) | standing height, metres (constant per person) |
| boxes | (M, 4) | ``[x0, y0, x1, y1]`` px box of the person's visible pixels; zeros when hidden |
| boxes_full | (M, 4) | box of the whole projected mesh (may leave the image), px |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch
from PIL import Image

from metrichmsr._outputs import staged_output
from metrichmsr.body import POSE_BONES, BodyModel, BodyParams
from metrichmsr.errors import InputError
from metrichmsr.render import Renderer
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.synth.dataset import read_index, write_index
from metrichmsr.synth.people import level_axes, render_people
from metrichmsr.synth.poses import walking_gait
from metrichmsr.synth.scenes import in_frame_share, sample_camera, sample_phenotypes

TRUTH_FILE = "truth.npz"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class VideoConfig:
    """Ranges the random clips are drawn from (uniform unless said otherwise).

    The camera fields have ``synth.scenes.SceneConfig``'s names (``sample_camera`` reads
    either): a camera fixed over a floor, landscape, pitched down, higher than a still's."""

    long_side_px: int = 640
    aspects: tuple[float, ...] = (4 / 3, 16 / 9)
    portrait_share: float = 0.0
    fov_deg: tuple[float, float] = (35.0, 90.0)  # horizontal
    principal_offset: float = 0.02  # std of (c - centre) / size, clipped at 2 std
    camera_height_m: tuple[float, float] = (1.5, 8.0)
    pitch_deg: tuple[float, float] = (5.0, 35.0)  # positive looks down
    roll_deg: tuple[float, float] = (-3.0, 3.0)
    frames: int = 48
    fps: float = 12.0
    people: tuple[int, int] = (2, 6)
    speed_mps: tuple[float, float] = (0.8, 1.6)
    straight_share: float = 0.5  # the others walk a circle
    turn_rate_deg_s: tuple[float, float] = (10.0, 40.0)  # either way
    # Where a path passes at mid-clip: a pixel drawn over these shares of the image's width and
    # height (the hip midpoint there), kept when it is this far ahead on the floor (metres).
    mid_image_x: tuple[float, float] = (0.05, 0.95)
    mid_image_y: tuple[float, float] = (0.2, 0.95)
    distance_m: tuple[float, float] = (2.0, 20.0)
    min_in_view: float = 0.5  # share of the frames whose hip midpoint projects into the image
    min_ahead_m: float = 1.0  # level-frame distance ahead of the camera, every frame
    min_separation_m: float = 0.8  # between two people's hip midpoints on the floor, every frame
    wall_behind_m: tuple[float, float] = (3.0, 15.0)  # back wall behind the farthest person

    def __post_init__(self):
        if self.frames < 1 or not self.fps > 0:
            raise ValueError(f"a clip needs frames >= 1 and fps > 0, got frames={self.frames}, fps={self.fps}")
        if not 1 <= self.people[0] <= self.people[1]:
            raise ValueError(f"people must be (min, max) with 1 <= min <= max, got {self.people}")


@dataclass
class WalkingClip:
    """A clip's people over time, before rendering: F frames, N people, camera frame, metres.

    ``params(f)`` gives frame f's ``BodyParams``; ``translation`` (F, N, 3) is each hip
    midpoint, ``global_rotation`` (F, N, 3, 3) each body's orientation, ``bone_rotvec``
    (F, N, P, 3) rad its pose, ``phenotype`` (N, 6) who they are. ``speed_mps`` (N,) and
    ``turn_rate_rad_s`` (N,) (positive turns right, seen from above) describe their paths.
    """

    K: np.ndarray
    size: tuple[int, int]
    floor: FloorPlane
    fps: float
    wall_distance_m: float
    phenotype: torch.Tensor
    bone_rotvec: torch.Tensor
    global_rotation: torch.Tensor
    translation: torch.Tensor
    speed_mps: np.ndarray
    turn_rate_rad_s: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.translation)

    def params(self, frame: int) -> BodyParams:
        return BodyParams(self.phenotype, self.bone_rotvec[frame], self.global_rotation[frame], self.translation[frame])


def walk_path(
    start_xz: np.ndarray, heading_rad: float, speed_mps: float, turn_rate_rad_s: float, times_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A walk at constant speed and turn rate on the floor: positions (T, 2) (level-frame x
    right, z ahead, metres) and headings (T,) rad at ``times_s`` (T,) (negative: before the
    start). ``start_xz`` (2,): where the walker is at time 0; heading 0 walks along +z, a
    positive heading or turn rate toward +x."""
    t = np.asarray(times_s, dtype=np.float64)
    heading = heading_rad + turn_rate_rad_s * t
    if abs(turn_rate_rad_s) < 1e-9:
        step = speed_mps * t[:, None] * np.array([math.sin(heading_rad), math.cos(heading_rad)])
    else:  # a circle of radius speed / turn rate
        radius = speed_mps / turn_rate_rad_s
        step = radius * np.stack([math.cos(heading_rad) - np.cos(heading), np.sin(heading) - math.sin(heading_rad)], axis=-1)
    return np.asarray(start_xz, dtype=np.float64) + step, heading


def gait_cycle_m(hip_height_m: np.ndarray, speed_mps: np.ndarray) -> np.ndarray:
    """Length of one gait cycle (two steps), metres: longer legs and faster walks take longer
    strides (about 1.65 leg lengths at 1.3 m/s, an adult's 1.45 m)."""
    return np.asarray(hip_height_m) * (1.0 + 0.5 * np.asarray(speed_mps))


def thigh_swing_rad(cycle_m: np.ndarray, hip_height_m: np.ndarray) -> np.ndarray:
    """The thigh swing either way (rad) whose feet, at its ends, lie one step (half a cycle) apart."""
    return np.arcsin(np.clip(np.asarray(cycle_m) / (4.0 * np.asarray(hip_height_m)), 0.0, 0.9))


def _yaw(heading: np.ndarray) -> torch.Tensor:
    """(..., 3, 3) level-frame body rotations facing along ``heading`` (...) rad (walk_path's):
    the identity faces the camera (-z), so the body turns by heading + pi about the vertical."""
    rotvec = np.zeros((*np.shape(heading), 3))
    rotvec[..., 1] = np.asarray(heading) + math.pi
    return roma.rotvec_to_rotmat(torch.as_tensor(rotvec, dtype=torch.float32))


def _paths(rng, hip_height_m: np.ndarray, K, size, floor: FloorPlane, config: VideoConfig):
    """Each person's path over the clip's times, drawn until it fits (see the module docstring):
    (indices kept, their (F, 2) positions, (F,) headings, speeds, turn rates). A person whose
    path finds no place within 30 draws is left out."""
    axes = level_axes(floor.up)
    times = (np.arange(config.frames) - (config.frames - 1) / 2) / config.fps  # 0 at mid-clip
    kept, positions, headings, speeds, turns = [], [], [], [], []
    for i, hip in enumerate(hip_height_m):
        root_y = floor.camera_height_m - hip  # level-frame y of the hip midpoint when standing
        for _ in range(30):
            pixel = (rng.uniform(*config.mid_image_x) * size[0], rng.uniform(*config.mid_image_y) * size[1], 1.0)
            ray = axes.T @ np.linalg.solve(K, pixel)  # level frame
            speed, heading = rng.uniform(*config.speed_mps), rng.uniform(-math.pi, math.pi)
            turn = 0.0
            if rng.random() >= config.straight_share:
                turn = rng.choice((-1.0, 1.0)) * math.radians(rng.uniform(*config.turn_rate_deg_s))
            if ray[1] <= 1e-6:  # at or above the horizon of the hips' plane
                continue
            middle = ray * root_y / ray[1]
            if not config.distance_m[0] <= middle[2] <= config.distance_m[1]:
                continue
            xz, heading_t = walk_path(middle[[0, 2]], heading, speed, turn, times)
            if xz[:, 1].min() < config.min_ahead_m:
                continue
            if any(np.hypot(*(xz - other).T).min() < config.min_separation_m for other in positions):
                continue
            roots = np.stack([xz[:, 0], np.full(len(xz), root_y), xz[:, 1]], axis=-1) @ axes.T
            if in_frame_share(roots, K, size) < config.min_in_view:
                continue
            kept.append(i)
            positions.append(xz)
            headings.append(heading_t)
            speeds.append(speed)
            turns.append(turn)
            break
    return kept, positions, headings, np.array(speeds), np.array(turns)


@torch.inference_mode()
def sample_clip(body: BodyModel, seed: int, config: VideoConfig = VideoConfig()) -> WalkingClip:
    """Draw one clip's camera and walkers (no rendering; see :class:`WalkingClip`).

    A draw in which fewer than ``config.people[0]`` people find a path is drawn again."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    kept = []
    while len(kept) < config.people[0]:
        K, size, floor = sample_camera(rng, config)
        n = int(rng.integers(config.people[0], config.people[1] + 1))
        phenotype = sample_phenotypes(body, n, generator)
        rest = body(phenotype, torch.zeros(n, len(POSE_BONES), 3), torch.eye(3).expand(n, 3, 3), torch.zeros(n, 3))
        hip_height_m = rest.vertices[..., 1].amax(dim=1).numpy().astype(np.float64)  # level y is down; the root at 0
        kept, positions, headings, speeds, turns = _paths(rng, hip_height_m, K, size, floor, config)

    phenotype, hip_height_m = phenotype[kept], hip_height_m[kept]
    cycle_m = gait_cycle_m(hip_height_m, speeds)
    distance_m = speeds[:, None] * np.arange(config.frames) / config.fps  # (N, F) walked since frame 0
    phase = rng.uniform(0.0, 2 * math.pi, (len(kept), 1)) + 2 * math.pi * distance_m / cycle_m[:, None]
    swing = thigh_swing_rad(cycle_m, hip_height_m)
    gait = np.stack([walking_gait(p, s, rng) for p, s in zip(phase, swing)], axis=1)  # (F, N, P, 3)
    bone_rotvec = torch.as_tensor(gait, dtype=torch.float32)
    yaw = _yaw(np.stack(headings, axis=1))  # (F, N, 3, 3)
    xz = np.stack(positions, axis=1)  # (F, N, 2)

    # The lowest point of each frame's posed body on the floor: the hips rise and fall with the
    # stride. All frames in one batch: Anny builds the rest bodies once per call.
    n, frames = len(kept), config.frames
    local = body(phenotype.repeat(frames, 1), bone_rotvec.flatten(0, 1), yaw.flatten(0, 1), torch.zeros(frames * n, 3)).vertices
    root_y = floor.camera_height_m - local[..., 1].amax(dim=1).reshape(frames, n).numpy().astype(np.float64)
    roots = np.stack([xz[..., 0], root_y, xz[..., 1]], axis=-1)  # (F, N, 3) level frame
    axes = level_axes(floor.up)  # X_cam = axes @ X_level
    farthest_m = float(xz[..., 1].max()) + 0.5  # a body reaches about this far behind its hips
    return WalkingClip(
        K=K,
        size=size,
        floor=floor,
        fps=config.fps,
        wall_distance_m=farthest_m + rng.uniform(*config.wall_behind_m),
        phenotype=phenotype,
        bone_rotvec=bone_rotvec,
        global_rotation=torch.as_tensor(axes, dtype=torch.float32) @ yaw,
        translation=torch.as_tensor(roots @ axes.T, dtype=torch.float32),
        speed_mps=speeds,
        turn_rate_rad_s=turns,
    )


def save_clip(directory: Path, clip: WalkingClip, body: BodyModel, renderer: Renderer, seed: int, progress=None) -> None:
    """Render every frame of ``clip`` into ``directory/frames/`` and write ``directory/truth.npz``
    (see the module docstring). ``seed``: the clip's, given to every frame's ``render_people``
    (same room, light, noise and clothes); ``progress``: a tqdm bar advanced per frame."""
    (directory / FRAMES_DIR).mkdir(parents=True)
    rows = {key: [] for key in ("frame", "person_id", "root", "joints", "height_m", "boxes", "boxes_full")}
    n = len(clip.phenotype)
    for f in range(clip.frames):
        image = render_people(
            body, renderer, clip.params(f), clip.K, clip.size, floor=clip.floor, seed=seed, wall_distance_m=clip.wall_distance_m
        )
        Image.fromarray(image.image).save(directory / FRAMES_DIR / f"{f:06d}.png")
        rows["frame"].append(np.full(n, f))
        rows["person_id"].append(np.arange(n))
        rows["root"].append(image.params.translation.numpy())
        rows["joints"].append(image.joints)
        rows["height_m"].append(image.height_m)
        rows["boxes"].append(image.boxes)
        rows["boxes_full"].append(image.boxes_full)
        if progress is not None:
            progress.update()
    np.savez_compressed(
        directory / TRUTH_FILE,
        K=clip.K,
        fps=clip.fps,
        floor_up=np.asarray(clip.floor.up),
        floor_camera_height_m=clip.floor.camera_height_m,
        **{key: np.concatenate(values) for key, values in rows.items()},
    )


def load_truth(clip_dir: Path) -> dict[str, np.ndarray]:
    """A clip's ``truth.npz`` (see the module docstring) as a dict of arrays."""
    with np.load(Path(clip_dir) / TRUTH_FILE) as data:
        return {key: data[key] for key in data.files}


def list_clips(directory: Path) -> list[Path]:
    """The clip folders of a video synth folder, in seed order; InputError if it is not one."""
    directory = Path(directory)
    read_index(directory, "video")
    clips = sorted(p for p in directory.iterdir() if (p / TRUTH_FILE).is_file() and (p / FRAMES_DIR).is_dir())
    if not clips:
        raise InputError(f"{directory}: video synth folder without any clip")
    return clips


def write_clips(
    out_dir: Path,
    n: int,
    seed: int,
    config: VideoConfig = VideoConfig(),
    body: BodyModel | None = None,
    renderer: Renderer | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render clips ``seed .. seed + n - 1`` into ``out_dir`` (``OUT/<seed>/``, 8 digits), written
    atomically when complete; ``overwrite``: replace an earlier set there
    (``metrichmsr._outputs.check_output``)."""
    from tqdm import tqdm

    body = body or BodyModel()
    renderer = renderer or Renderer()
    with staged_output(Path(out_dir), overwrite) as staging:
        with tqdm(total=n * config.frames, desc="synth --video", unit="frame", disable=not progress) as bar:
            for s in range(seed, seed + n):
                save_clip(staging / f"{s:08d}", sample_clip(body, s, config), body, renderer, s, bar)
        write_index(staging, "video", seed, n, config, __doc__.split("\n\n", 2)[2])
    return Path(out_dir)
