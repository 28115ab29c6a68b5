"""What `recover` returns and writes: the output contract (version 1, DESIGN.md).

``RecoveryResult`` holds everything recovered from one image (people, scene depth, floor);
``to_json`` is result.json's content and ``save`` writes it with the 3D overlay. Camera frame
(OpenCV), metres, pixels of the input image throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from metrichmsr._outputs import staged_output
from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyModel, BodyParams, Skeleton
from metrichmsr.camera import Intrinsics
from metrichmsr.defaults import DEFAULT_RIG_FORMATS, POPULATION
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_LANDMARK_NAMES
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.scene.rig_export import BvhSkeleton, PersonRig, bvh_pose, bvh_text, check_formats, write_rigged_glb

SCHEMA = "metrichmsr.result/1"


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
    # Farther and taller (> 1) or nearer and shorter (< 1) by this factor than the network read
    # them, as an adult of the height the population gives (population.adult_heights_m; only
    # with population "adults"); 1: as read.
    population_scale: float = 1.0
    # Then nearer and smaller (< 1: feet sunk below the floor the others place, a child read
    # as an adult farther away) or farther and taller (> 1: feet floating well above it) by
    # this factor, to stand on that floor; 1: left where they were.
    floor_scale: float = 1.0
    # Then farther and taller (> 1) or nearer and shorter (< 1) by this factor, toward the
    # floor the people share (scene.floor.shared_floor_scales); 1: left where they were.
    shared_floor_scale: float = 1.0
    rig: PersonRig | None = None  # the body on Anny's skeleton, for the rigged exports

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "bbox": _floats(self.bbox),
            "score": round(float(self.score), 4),
            "translation": _floats(self.translation),
            "height_m": round(float(self.height_m), 4),
            "population_scale": round(float(self.population_scale), 4),
            "floor_scale": round(float(self.floor_scale), 4),
            "shared_floor_scale": round(float(self.shared_floor_scale), 4),
            "joints3d": {name: _floats(p) for name, p in zip(JOINT_NAMES, self.joints3d)},
            "keypoints2d": {name: _floats(p) for name, p in zip(BLAZEPOSE_LANDMARK_NAMES, self.keypoints2d)},
            "body": {
                "model": "anny",
                "phenotype": {name: round(float(v), 5) for name, v in zip(PHENOTYPE_NAMES, self.phenotype)},
                "pose": {
                    "parameterization": (
                        "anny local-ref: axis-angle (rad) about each bone head, Anny world axes; other bones at rest"
                    ),
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
    skeleton: Skeleton | None = None  # the body model's rig (``BodyModel.skeleton``), for the rigged exports
    population: str = POPULATION  # who the people were taken to be (``metrichmsr.population``)

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
            "population": self.population,
            "people": [p.to_json() for p in self.people],
            **({"scene": self.scene.summary} if self.scene is not None else {}),
        }

    def save(
        self, out_dir: str | Path, renderer=None, overwrite: bool = False, formats: Sequence[str] = DEFAULT_RIG_FORMATS
    ) -> Path:
        """Write result.json, the 3D overlay (``scene.export.write_overlay``: scene.glb,
        overlay.png, and with scene depth depth.npy, depth.png) and the viewer page view.html
        (``viewer.write_view_html``) into ``out_dir`` atomically, with the rigged people in
        ``formats`` (``defaults.RIG_FORMATS``, ``scene.rig_export``): ``"glb"``
        people_rigged.glb, ``"bvh"`` person_<id>.bvh (needs :attr:`skeleton` and each
        person's ``rig``).

        The files are written into a hidden sibling folder that replaces ``out_dir`` only once
        complete, so an interrupted run never leaves a half-written result folder. ``out_dir``
        must be new or empty, or with ``overwrite`` an earlier result folder holding nothing
        else (``metrichmsr._outputs.check_output``); anything else raises InputError untouched.
        ``renderer``: a ``render.Renderer`` to draw the overlay with (default: a new one).
        """
        from metrichmsr.scene.export import write_overlay
        from metrichmsr.viewer import write_view_html

        self._check_rigs(formats)
        with staged_output(Path(out_dir), overwrite) as staging:
            (staging / "result.json").write_text(json.dumps(self.to_json(), indent=1))
            write_overlay(
                staging,
                self.image,
                self.intrinsics.K,
                [(p.vertices, self.faces) for p in self.people],
                depth_m=self.scene.depth_m if self.scene is not None else None,
                floor=self.floor if self.scene is not None else None,  # no scene asked for: no floor drawn
                renderer=renderer,
            )
            self._write_rigs(staging, formats)
            write_view_html(staging)
        return Path(out_dir)

    def _check_rigs(self, formats: Sequence[str]) -> None:
        """ValueError unless the rigged people can be written in ``formats``."""
        check_formats(formats)
        if formats and self.people and (self.skeleton is None or any(p.rig is None for p in self.people)):
            raise ValueError("rigged exports need the result's skeleton and every person's rig (as a Recoverer gives them)")

    def _write_rigs(self, folder: Path, formats: Sequence[str]) -> None:
        rigs = [p.rig for p in self.people]
        if "glb" in formats and rigs:  # nobody: no rig to write
            names = [f"person_{p.id}" for p in self.people]
            write_rigged_glb(folder / "people_rigged.glb", rigs, self.skeleton, self.faces, names=names)
        if "bvh" in formats:
            for person, rig in zip(self.people, rigs):
                root, rotations = bvh_pose(rig)
                text = bvh_text(BvhSkeleton.of(self.skeleton, rig.rest_bone_poses), root[None], rotations[None], STILL_FRAME_S)
                (folder / f"person_{person.id}.bvh").write_text(text)


#: The frame time a photo's one-frame BVH files give (what most BVH players assume, 30 fps).
STILL_FRAME_S = 1 / 30


def _floats(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def posed_people(body: BodyModel, observations: list, params: BodyParams) -> list[PersonResult]:
    """The people (ids 0..N-1) that N detections (``perception.PersonObservation``: box, score,
    landmarks) and their body ``params`` describe, posed by ``body``."""
    return [
        PersonResult(id=i, bbox=obs.bbox, score=obs.score, keypoints2d=obs.landmarks2d, **fields)
        for i, (obs, fields) in enumerate(zip(observations, posed_bodies(body, params)))
    ]


@torch.inference_mode()
def posed_bodies(body: BodyModel, params: BodyParams) -> list[dict]:
    """Per person, the :class:`PersonResult` fields of the body ``params`` describe (numpy):
    translation, height_m, joints3d, vertices, phenotype, bone_rotvec, global_rotation, rig."""
    out = body(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
    heights = body.standing_height(out.rest_vertices)
    return [
        dict(
            translation=params.translation[i].cpu().numpy(),
            height_m=float(heights[i]),
            joints3d=out.joints[i].cpu().numpy(),
            vertices=out.vertices[i].cpu().numpy(),
            phenotype=params.phenotype[i].cpu().numpy(),
            bone_rotvec=params.bone_rotvec[i].cpu().numpy(),
            global_rotation=params.global_rotation[i].cpu().numpy(),
            rig=PersonRig(
                rest_vertices=out.rest_vertices[i].cpu().numpy(),
                rest_bone_poses=out.rest_bone_poses[i].cpu().numpy(),
                bone_poses=out.bone_poses[i].cpu().numpy(),
                to_camera=out.to_camera[i].cpu().numpy(),
            ),
        )
        for i in range(len(params.translation))
    ]
