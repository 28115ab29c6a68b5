"""Online training data for HumanMoE: synthetic Anny people as BlazePose would report them.

Each sample is one person, drawn as ``synth.sample_scene`` draws people (Anny's population
prior over all ages, the natural pose families, any yaw, feet on the floor 1-30 m away,
anywhere in the frame of a camera from ``synth.sample_camera``: FOV 20-120 deg, portrait and
landscape, off-centre principal point, pitch and roll), without rendering: the true joints go
through ``train.noise.NoiseModel``, BlazePose's measured errors, instead of through an image.

Why a pool of bodies. Anny's forward is the cost (~2-4 ms per body on 2 cores even on the
joint fast path, against ~10 us for everything else), so bodies (phenotype + pose -> joints in
a canonical frame) live in a pool that new draws renew at ``fresh_per_batch`` bodies per batch
on average, oldest first, in blocks of ``RENEW_BLOCK`` (Anny's forward has a large fixed cost
per call: 8 bodies cost about as much as 256). Orientation (yaw about the vertical), camera, placement and detector noise are
drawn anew for every sample: they act on the canonical joints exactly (a rigid motion), so a
pooled body seen again is a new sample everywhere but in its shape and articulation.

With ``silhouette_grid``, each sample also gets the person's silhouette as BlazePose's
segmentation would show it, drawn by splatting ``body.SURFACE_POINTS`` posed mesh vertices
(kept in the pool beside the joints) on a grid four times as fine, closing the gaps between
points and averaging down: a soft outline, cut where the image ends, with no one else in it.
Its thickness matters (a network reads a person bigger than their box as nearer), so it is
matched to BlazePose's masks: on 57 people of held-out renders the median IoU is 0.85 and
the simulated silhouette covers 1.06 times the cells BlazePose's does (a grid twice as fine
with a one-cell closing: 1.23). Each sample's outline is also thinned or thickened at random
by one fine cell so that no network leans on the exact thickness.

Seeds are the training split's: below ``synth.HELD_OUT_SEED_START``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import maximum_filter, minimum_filter

from metrichmsr.body import BodyModel, BodyParams
from metrichmsr.geometry import project_points
from metrichmsr.joints import HIPS
from metrichmsr.models.tokens import HumanInputs, silhouette_window
from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, level_axes, sample_camera, sample_pose
from metrichmsr.synth.scenes import sample_phenotypes
from metrichmsr.train.noise import NoiseModel, inside_image, joint_box

#: How far Anny's soles lie below its lowest joint (heel or toe), metres: median over the pose
#: families and the population (1.5 cm, 0.5-3.7 cm).
SOLE_BELOW_JOINTS_M = 0.015
RENEW_BLOCK = 256
_PLACEMENT_TRIES = 8  # placements tried at once per candidate; those without a fit are redrawn
_MIN_DEPTH_M = 0.2  # every joint at least this far in front of the camera
#: Share of samples given no silhouette (all zeros), as for a person whose segmentation the
#: pipeline could not get: the model must still work from keypoints alone.
NO_SILHOUETTE_SHARE = 0.05
#: Fine-grid cells per silhouette cell, and the dilation that closes the gaps between splatted
#: points (then undone by an erosion of the same size, give or take the thickness jitter).
SPLAT_FACTOR = 4
CLOSING_CELLS = 5
#: What clothes and hair do to a bare body's outline, drawn per person so that the network
#: reads no build, age or distance from them: a network trained on bare bodies reads a coat
#: (a wider upper body) or hair (a taller head) as a child's proportions, a short person
#: standing near. The upper body's and the legs' widths are drawn apart, as erosion sizes in
#: fine cells: 1 keeps the closing's full dilation (2 cells wider each side than the bare body),
#: 6 is half a cell thinner; heights keep CLOSING_CELLS give or take one. Hair or a hat
#: raises the upper outline by 0 to HAIR_CELLS fine cells.
WIDTH_EROSION_CELLS = (1, 6)
HAIR_CELLS = 3


@dataclass
class PeopleTargets:
    """Ground truth of a batch (B people, one per sample), camera frame (OpenCV), metres.

    params: ``BodyParams``: phenotype (B, 6), bone_rotvec (B, 18, 3) rad, global_rotation
        (B, 3, 3), translation (B, 3) = the root (hip midpoint).
    joints: (B, 23, 3) ``body.JOINT_NAMES`` order, = ``body.joints(*params)`` (fast path).
    image_size: (B, 2) [W, H] pixels of each sample's image.
    """

    params: BodyParams
    joints: torch.Tensor
    image_size: torch.Tensor

    def to(self, device: torch.device | str) -> "PeopleTargets":
        return PeopleTargets(self.params.to(device), self.joints.to(device), self.image_size.to(device))

    def select(self, index: torch.Tensor) -> "PeopleTargets":
        """The people at ``index`` (a (B',) index or (B,) bool tensor)."""
        return PeopleTargets(self.params.select(index), self.joints[index], self.image_size[index])

    @classmethod
    def cat(cls, parts: list["PeopleTargets"]) -> "PeopleTargets":
        """One batch of several."""
        params = BodyParams.cat([p.params for p in parts])
        return cls(params, torch.cat([p.joints for p in parts]), torch.cat([p.image_size for p in parts]))


class SyntheticPeople:
    """An endless, seeded stream of synthetic people seen through BlazePose's errors.

    Args:
        body: the Anny wrapper (its ``joints`` fast path is used).
        noise: the detector model (``NoiseModel.load()``, or ``NoiseModel.noiseless()``).
        scene_config: ranges of cameras, distances and pose families (``people`` is ignored:
            one person per sample).
        seed: in ``[0, HELD_OUT_SEED_START)``; the stream is a function of the seed and the
            sequence of batch sizes asked for.
        pool_size: bodies kept (see the module docstring), drawn at construction.
        fresh_per_batch: new bodies replacing the oldest per ``sample`` call, on average.
        silhouette_grid: side of ``HumanInputs.silhouette``; 0: no silhouettes (``silhouette``
            is None).
        stream: > 0: one of several independent streams of the same seed (``ParallelPeople``'s
            workers); 0 is the seed's own stream.
    """

    def __init__(
        self,
        body: BodyModel,
        noise: NoiseModel,
        scene_config: SceneConfig = SceneConfig(),
        seed: int = 0,
        pool_size: int = 4096,
        fresh_per_batch: int = 8,
        silhouette_grid: int = 0,
        stream: int = 0,
    ):
        if not 0 <= seed < HELD_OUT_SEED_START:
            raise ValueError(f"seed must be in [0, {HELD_OUT_SEED_START}) (the training split), got {seed}")
        if pool_size < 1 or not 0 <= fresh_per_batch <= pool_size:
            raise ValueError(f"need pool_size >= 1 and 0 <= fresh_per_batch <= pool_size, got {pool_size}, {fresh_per_batch}")
        self.body, self.noise, self.config = body, noise, scene_config
        self.fresh_per_batch = fresh_per_batch
        self.silhouette_grid = silhouette_grid
        entropy = np.random.SeedSequence([seed, stream] if stream else seed)
        self.rng = np.random.default_rng(entropy)
        self.generator = torch.Generator().manual_seed(seed if not stream else int(entropy.generate_state(1, np.uint64)[0]))
        self._phenotype, self._bone_rotvec, self._joints, self._surface = self._draw_bodies(pool_size)
        self._oldest, self._owed = 0, 0

    @torch.no_grad()
    def _draw_bodies(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """n new bodies: phenotype (n, 6), bone_rotvec (n, 18, 3), canonical joints (n, 23, 3)
        and, with silhouettes, canonical surface points (n, SURFACE_POINTS, 3) float32 (else
        None): upright, facing the camera, root at the origin (camera axes, metres)."""
        phenotype, bone_rotvec, joints, surface = [], [], [], []
        for start in range(0, n, 512):  # chunks bound the memory of Anny's batched forward
            m = min(512, n - start)
            families = self.config.pose_families
            poses = np.stack([sample_pose(self.rng, families[self.rng.integers(len(families))])[0] for _ in range(m)])
            ph = sample_phenotypes(self.body, m, self.generator)
            rv = torch.as_tensor(poses, dtype=torch.float32)
            eye = torch.eye(3).expand(m, 3, 3)
            if self.silhouette_grid:
                j, points = self.body.joints_and_surface(ph, rv, eye, torch.zeros(m, 3))
                surface.append(points.numpy())
            else:
                j = self.body.joints(ph, rv, eye, torch.zeros(m, 3))
            joints.append(j.double().numpy())
            phenotype.append(ph.numpy())
            bone_rotvec.append(poses)
        return (
            np.concatenate(phenotype),
            np.concatenate(bone_rotvec),
            np.concatenate(joints),
            np.concatenate(surface) if surface else None,
        )

    def _renew_pool(self) -> None:
        size = len(self._joints)
        block = min(RENEW_BLOCK, size)
        self._owed += self.fresh_per_batch
        while self._owed >= block:
            index = (self._oldest + np.arange(block)) % size
            phenotype, bone_rotvec, joints, surface = self._draw_bodies(block)
            self._phenotype[index], self._bone_rotvec[index], self._joints[index] = phenotype, bone_rotvec, joints
            if surface is not None:
                self._surface[index] = surface
            self._oldest = (self._oldest + block) % size
            self._owed -= block

    def _candidates(self, n: int) -> dict[str, np.ndarray]:
        """n draws of (body, yaw, camera, placement); those placed in frame and not missed by the
        detector model are returned (fewer than n)."""
        body = self.rng.integers(len(self._joints), size=n)
        yaw = self.rng.uniform(-math.pi, math.pi, n)
        cos, sin = np.cos(yaw), np.sin(yaw)
        zero, one = np.zeros(n), np.ones(n)
        # Rotation about the level frame's y (down) axis, as roma.rotvec_to_rotmat([0, yaw, 0]).
        yaw_rotation = np.stack((cos, zero, sin, zero, one, zero, -sin, zero, cos), -1).reshape(n, 3, 3)
        local = np.einsum("nij,nkj->nki", yaw_rotation, self._joints[body])  # level frame, root at 0
        cameras = [sample_camera(self.rng, self.config) for _ in range(n)]
        K = np.stack([c[0] for c in cameras])
        size = np.array([c[1] for c in cameras], dtype=np.float64)
        axes = level_axes(np.stack([c[2].up for c in cameras]))  # X_cam = axes @ X_level
        camera_height = np.array([c[2].camera_height_m for c in cameras])

        # Placement as synth.scenes._place_people, vectorised over tries: the feet on the floor,
        # a log-uniform distance, the root's image column uniform over the (slightly widened) frame.
        root_y = camera_height - local[..., 1].max(-1) - SOLE_BELOW_JOINTS_M  # (n,) level y is down
        distance = np.exp(self.rng.uniform(*np.log(self.config.distance_m), (n, _PLACEMENT_TRIES)))
        u = (self.rng.uniform(-0.05, 1.05, (n, _PLACEMENT_TRIES)) * size[:, :1] - K[:, :1, 2]) / K[:, :1, 0]
        at_x0 = np.einsum("nij,ntj->nti", axes, np.stack(np.broadcast_arrays(0.0, root_y[:, None], distance), -1))
        # Solve u = (x a0 + p0) / (x a2 + p2) for the lateral position x on the floor.
        x = (at_x0[..., 0] - u * at_x0[..., 2]) / (u * axes[:, None, 2, 0] - axes[:, None, 0, 0])
        roots = np.stack(np.broadcast_arrays(x, root_y[:, None], distance), -1)  # (n, T, 3) level frame
        joints = np.einsum("nij,ntkj->ntki", axes, local[:, None] + roots[:, :, None])  # (n, T, 23, 3) camera
        K_t = np.repeat(K, _PLACEMENT_TRIES, 0)
        uv = project_points(K_t, joints.reshape(-1, *joints.shape[2:])).reshape(*joints.shape[:3], 2)
        share = inside_image(uv, size[:, None]).mean(-1)
        fits = (share >= self.config.min_in_frame) & (joints[..., 2].min(-1) > _MIN_DEPTH_M)
        placed = fits.any(1)
        first = fits.argmax(1)  # the first try that fits
        pick = np.arange(n)

        # The detector misses small people: keep each with BlazePose's measured detection rate,
        # so the stream holds the people the pipeline would actually be given.
        limit = np.concatenate((size, size), -1)[:, None] - 1
        box = np.clip(joint_box(uv[pick, first]), 0.0, limit[:, 0])
        found = self.rng.random(n) >= self.noise.miss_probability(box[:, 3] - box[:, 1])
        keep = placed & found
        return {
            "body": body[keep],
            "global_rotation": (axes @ yaw_rotation)[keep],
            "translation": np.einsum("nij,nj->ni", axes, roots[pick, first])[keep],
            "joints": joints[pick, first][keep],
            "K": K[keep],
            "image_size": size[keep],
        }

    def sample(self, batch_size: int) -> tuple[HumanInputs, PeopleTargets]:
        """A batch of ``batch_size`` people, one per image.

        Returns:
            inputs: ``models.humanmoe.HumanInputs``, float32: ``keypoints2d``
                (B, 23, 3) [u px, v px, visibility] (all zero for the two small-toe points
                BlazePose lacks; visibility 0 outside the image); ``world3d`` (B, 23, 3) metres,
                hip-centred, in the crop camera looking along the box centre's ray (x right,
                y down, z forward), at BlazePose's fixed body size, zeros where absent;
                ``bbox`` (B, 4) [x0, y0, x1, y1] px; ``K`` (B, 3, 3).
            targets: the truth (``PeopleTargets``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._renew_pool()
        parts, count = [], 0
        while count < batch_size:
            # Some candidates find no place or are "missed": draw a few more than needed.
            part = self._candidates(max(16, int(1.3 * (batch_size - count))))
            parts.append(part)
            count += len(part["body"])
        drawn = {key: np.concatenate([p[key] for p in parts])[:batch_size] for key in parts[0]}
        seen = self.noise.simulate(drawn["joints"], drawn["translation"], drawn["K"], drawn["image_size"], self.rng)

        def f32(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32)

        silhouette = None
        if self.silhouette_grid:
            # The joints' rigid motion (rotation, then the root's place), as one batched matmul.
            rotation = drawn["global_rotation"].transpose(0, 2, 1).astype(np.float32)
            points = self._surface[drawn["body"]] @ rotation + drawn["translation"][:, None].astype(np.float32)
            window = silhouette_window(torch.as_tensor(seen["bbox"])).numpy()
            uv = project_points(drawn["K"], points)
            uv[points[..., 2] <= 0] = -np.inf  # behind the camera: in no image
            n = len(uv)
            widths = self.rng.integers(WIDTH_EROSION_CELLS[0], WIDTH_EROSION_CELLS[1] + 1, (n, 2))
            erosion = np.column_stack((CLOSING_CELLS + self.rng.integers(-1, 2, n), widths))
            hips = project_points(drawn["K"], drawn["joints"][:, HIPS]).mean(1)  # (n, 2) px
            waist = (hips[:, 1] - window[:, 1]) / (window[:, 3] - window[:, 1]) * SPLAT_FACTOR * self.silhouette_grid
            hair = self.rng.integers(0, HAIR_CELLS + 1, n)
            silhouette = splat_silhouettes(uv, drawn["image_size"], window, self.silhouette_grid, erosion, waist, hair)
            silhouette[self.rng.random(len(silhouette)) < NO_SILHOUETTE_SHARE] = 0.0
            silhouette = f32(silhouette)
        inputs = HumanInputs(f32(seen["keypoints2d"]), f32(seen["world3d"]), f32(seen["bbox"]), f32(drawn["K"]), silhouette)
        params = BodyParams(
            f32(self._phenotype[drawn["body"]]),
            f32(self._bone_rotvec[drawn["body"]]),
            f32(drawn["global_rotation"]),
            f32(drawn["translation"]),
        )
        return inputs, PeopleTargets(params, f32(drawn["joints"]), f32(drawn["image_size"]))


class ParallelPeople:
    """``SyntheticPeople`` batches drawn in ``workers`` processes at once, to keep a GPU busy.

    One sampling process makes ~1,500 people a second, which leaves a GPU idle. Each worker
    runs its own stream of ``seed`` (``SyntheticPeople(stream=worker + 1)``) and pool; batches
    come round-robin from the workers (torch's DataLoader), so the whole stream is a function
    of ``seed``, ``workers`` and ``batch_size``. Pools renew at the in-process default's rate
    per person (8 bodies per 128 people); ``pool_size`` is each worker's.

    ``sample(n)`` returns the first ``n`` people of a batch of ``batch_size`` (n <= batch_size).
    """

    def __init__(self, workers: int, batch_size: int, seed: int = 0, silhouette_grid: int = 0, pool_size: int = 4096):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not 0 <= seed < HELD_OUT_SEED_START:
            raise ValueError(f"seed must be in [0, {HELD_OUT_SEED_START}) (the training split), got {seed}")
        self.batch_size = batch_size
        streams = _WorkerStreams(batch_size, seed, silhouette_grid, pool_size)
        loader = torch.utils.data.DataLoader(streams, batch_size=None, num_workers=workers, collate_fn=_as_is, prefetch_factor=4)
        self._batches = iter(loader)

    def sample(self, batch_size: int) -> tuple[HumanInputs, PeopleTargets]:
        if not 1 <= batch_size <= self.batch_size:
            raise ValueError(f"batch_size must be in [1, {self.batch_size}], got {batch_size}")
        inputs, targets = next(self._batches)
        if batch_size == self.batch_size:
            return inputs, targets
        first = torch.arange(batch_size)
        return inputs.select(first), targets.select(first)


class _WorkerStreams(torch.utils.data.IterableDataset):
    """Endless batches of one ``SyntheticPeople`` stream per DataLoader worker."""

    def __init__(self, batch_size: int, seed: int, silhouette_grid: int, pool_size: int):
        self.batch_size, self.seed, self.silhouette_grid, self.pool_size = batch_size, seed, silhouette_grid, pool_size

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        stream = 1 + (worker.id if worker is not None else 0)
        fresh = min(self.pool_size, max(1, round(8 * self.batch_size / 128)))
        sampler = SyntheticPeople(
            BodyModel(),
            NoiseModel.load(),
            seed=self.seed,
            pool_size=self.pool_size,
            fresh_per_batch=fresh,
            silhouette_grid=self.silhouette_grid,
            stream=stream,
        )
        while True:
            yield sampler.sample(self.batch_size)


def _as_is(batch):
    return batch


def splat_silhouettes(
    uv: np.ndarray,
    image_size: np.ndarray,
    window: np.ndarray,
    grid: int,
    erosion_cells: np.ndarray | None = None,
    waist_rows: np.ndarray | None = None,
    raise_cells: np.ndarray | None = None,
) -> np.ndarray:
    """(B, grid, grid) float32 soft silhouettes in [0, 1] from projected surface points.

    uv: (B, S, 2) pixels (pixel-centre convention) of points spread over each body's surface;
    image_size: (B, 2) [W, H]; window: (B, 4) outer edges [x0, y0, x1, y1] of the square the
    grid covers (``models.humanmoe.silhouette_window``). Points outside the image are not seen.
    A cell on a grid SPLAT_FACTOR times finer is on when a point falls in it; a dilation by
    CLOSING_CELLS then an erosion and averaging down give the coarse grid a soft edge.

    erosion_cells: (B, 3) [vertical, upper horizontal, lower horizontal] erosion sizes in fine
    cells (default CLOSING_CELLS throughout: a plain closing, which fills the gaps between
    points without fattening the outline); the upper sizes hold above ``waist_rows`` (B,)
    (fine rows from the window's top; default: the whole body is upper), the lower below.
    raise_cells: (B,) fine cells the outline above the waist is raised by (hair, a hat).
    """
    b = len(uv)
    fine = SPLAT_FACTOR * grid
    cell = np.floor((uv - window[:, None, :2]) / (window[:, None, 2:] - window[:, None, :2]) * fine).astype(np.int64)
    seen = inside_image(uv, image_size) & np.all((cell >= 0) & (cell < fine), axis=-1)
    person = np.broadcast_to(np.arange(b)[:, None], seen.shape)
    flat = (person * fine + cell[..., 1]) * fine + cell[..., 0]
    on = np.bincount(flat[seen], minlength=b * fine * fine).reshape(b, fine, fine) > 0
    on = maximum_filter(on, size=(1, CLOSING_CELLS, CLOSING_CELLS))
    erosion = np.full((b, 3), CLOSING_CELLS) if erosion_cells is None else np.asarray(erosion_cells).reshape(b, 3)
    upper = _eroded(on, erosion[:, [0, 1]])
    if waist_rows is not None:
        above = np.arange(fine)[None, :, None] < np.asarray(waist_rows)[:, None, None]
        on = np.where(above, upper, _eroded(on, erosion[:, [0, 2]]))
    else:
        above, on = np.ones((b, 1, 1), dtype=bool), upper
    if raise_cells is not None:
        raise_cells = np.asarray(raise_cells)
        for k in np.unique(raise_cells[raise_cells > 0]):
            chosen = raise_cells == k
            lifted = np.zeros_like(on[chosen])
            lifted[:, :-k] = (on[chosen] & above[chosen])[:, k:]
            on[chosen] |= lifted
    return on.reshape(b, grid, SPLAT_FACTOR, grid, SPLAT_FACTOR).mean(axis=(2, 4)).astype(np.float32)


def _eroded(on: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(B, F, F) bool grids ``on`` each eroded by its (B, 2) [rows, cols] ``sizes``."""
    out = np.empty_like(on)
    for rows, cols in np.unique(sizes, axis=0):
        chosen = np.all(sizes == (rows, cols), axis=-1)
        out[chosen] = minimum_filter(on[chosen], size=(1, rows, cols))
    return out
