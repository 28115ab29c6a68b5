"""The animated scene.glb of `track`: read back by pygltflib, its animation sampled at each
frame's time and skinned with numpy, it gives back every frame's posed bones and joints (as
the finished tracks have them: smoothed, scaled onto the floor), holds a track's last pose
through a gap and hides it outside the frames it was seen in; three.js and Blender play it
when they are here."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from scipy.spatial.transform import Rotation

from metrichmsr.bench.rig_roundtrip import accessor_array, joint_positions, posed_at, skinned_people
from metrichmsr.body import POSE_BONES, BodyParams
from metrichmsr.camera import Intrinsics
from metrichmsr.result import PersonResult, RecoveryResult, posed_bodies
from metrichmsr.scene.export import OPENCV_TO_GLTF
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.tracks import ClipTracks, TrackedFrame

ROOT = Path(__file__).resolve().parents[1]
INTRINSICS = Intrinsics(300.0, 300.0, 159.5, 119.5, "user")
#: Which frames each track is seen in: track 0 misses frame 2; track 1 starts late and ends early.
SEEN = {0: [0, 1, 3, 4], 1: [1, 2, 3]}
FRAMES = 5


@pytest.fixture(scope="module")
def clip(body_model, tmp_path_factory):
    """Two people walking and turning in front of a fixed camera, each one body throughout, on
    a level floor 1.6 m below it, every frame a new random pose, left unsmoothed: the finished
    ClipTracks, the recovered people per (frame, track), and the saved folder."""
    return _walkers(body_model, tmp_path_factory.mktemp("anim"), pose_smoothing_s=0.0)


@pytest.fixture(scope="module")
def smoothed_clip(body_model, tmp_path_factory):
    """As ``clip``, each track's pose a shaky version of one pose, turning at a walk's pace
    (0.5 rad/s), smoothed over time."""
    return _walkers(body_model, tmp_path_factory.mktemp("smoothed"), pose_smoothing_s=0.1, shake_rad=0.05, turn_rad=0.05)


def _walkers(body_model, folder: Path, pose_smoothing_s: float, shake_rad: float | None = None, turn_rad: float = 0.4):
    generator = torch.Generator().manual_seed(7)
    phenotypes = torch.tensor([[0.5, 0.77, 0.5, 0.5, 0.5, 0.5], [0.9, 0.4, 0.3, 0.7, 0.6, 0.4]])
    floor = FloorPlane.level(1.6)
    tracks = ClipTracks(INTRINSICS, (320, 240), fps=10.0, formats=("glb", "bvh"), pose_smoothing_s=pose_smoothing_s)
    recovered = {}
    poses = 0.4 * torch.randn(len(SEEN), len(POSE_BONES), 3, generator=generator)
    for frame in range(FRAMES):
        ids = [k for k in SEEN if frame in SEEN[k]]
        if shake_rad is None:
            rotvecs = 0.4 * torch.randn(len(ids), len(POSE_BONES), 3, generator=generator)
        else:
            rotvecs = poses[ids] + shake_rad * torch.randn(len(ids), len(POSE_BONES), 3, generator=generator)
        params = BodyParams(
            phenotype=phenotypes[ids],
            bone_rotvec=rotvecs,
            global_rotation=torch.tensor(
                Rotation.from_rotvec([[0.0, turn_rad * frame + 2.0 * k, 0.0] for k in ids]).as_matrix(), dtype=torch.float32
            ),
            translation=torch.tensor([[-0.6 + 1.2 * k + 0.1 * frame, 0.75, 4.0 + k] for k in ids]),
        )
        people = [
            PersonResult(id=i, bbox=np.array([100.0, 50.0, 140.0, 200.0]), score=1.0, keypoints2d=np.zeros((33, 3)), **f)
            for i, f in enumerate(posed_bodies(body_model, params))
        ]
        recovered.update({(frame, k): p for k, p in zip(ids, people)})
        result = RecoveryResult(
            np.zeros((240, 320, 3), np.uint8),
            "",
            INTRINSICS,
            people,
            faces=body_model.faces.numpy(),
            skeleton=body_model.skeleton,
            floor=floor,
        )
        tracks.add(TrackedFrame(frame, frame / 10.0, result, np.array(ids), floor, np.ones(len(ids), bool)))
    out = tracks.save(folder / "out")
    return tracks, recovered, out


def expected_heads(tracks, recovered, frame: int, track: int) -> np.ndarray:
    """(104, 3) the posed bone heads of ``track`` in ``frame`` (glTF frame) as the finished
    tracks place the body: scaled about the camera, then moved with its hip midpoint."""
    person = next(p for p in tracks.frames[frame].people if p.track_id == track)
    rig, start = recovered[frame, track].rig, recovered[frame, track].translation
    heads = (rig.to_camera @ rig.bone_poses[:, :, 3].T).T[:, :3]  # camera frame
    scale = person.height_m / recovered[frame, track].height_m
    return OPENCV_TO_GLTF * ((heads - start) * scale + person.translation)


def test_each_frame_plays_back_its_pose(clip, body_model):
    tracks, recovered, out = clip
    gltf = pygltflib.GLTF2.load(out / "scene.glb")
    assert [a.name for a in gltf.animations] == ["clip"]
    scaled = [p.height_m != recovered[f.index, p.track_id].height_m for f in tracks.frames for p in f.people]
    assert any(scaled)  # finish() scaled them onto the floor
    worst_heads = worst_joints = 0.0
    for frame in range(FRAMES):
        posed = posed_at(gltf, frame / 10.0)
        heads, bodies = joint_positions(posed), skinned_people(posed)
        for track, frames in SEEN.items():
            name = f"track_{track}"
            if frame not in frames:
                continue
            worst_heads = max(worst_heads, np.abs(heads[name] - expected_heads(tracks, recovered, frame, track)).max())
            camera = torch.tensor(bodies[name][None] * OPENCV_TO_GLTF, dtype=torch.float32)
            joints = body_model.keypoints({"vertices": camera})[0].numpy()
            person = next(p for p in tracks.frames[frame].people if p.track_id == track)
            worst_joints = max(worst_joints, np.abs(joints - person.joints3d).max())
    assert worst_heads <= 1e-3 and worst_joints <= 1e-3  # metres; measured ~0.01 mm


def test_a_smoothed_pose_moves_the_mesh_and_its_joints_alike(smoothed_clip, body_model):
    tracks, recovered, out = smoothed_clip
    gltf = pygltflib.GLTF2.load(out / "scene.glb")
    worst_joints = moved = 0.0
    for frame in range(FRAMES):
        bodies = skinned_people(posed_at(gltf, frame / 10.0))
        for person in tracks.frames[frame].people:
            camera = torch.tensor(bodies[f"track_{person.track_id}"][None] * OPENCV_TO_GLTF, dtype=torch.float32)
            joints = body_model.keypoints({"vertices": camera})[0].numpy()
            worst_joints = max(worst_joints, np.abs(joints - person.joints3d).max())
            read = recovered[frame, person.track_id]
            scale = person.height_m / read.height_m
            moved = max(moved, np.abs((read.joints3d - read.translation) * scale - (person.joints3d - person.translation)).max())
    assert moved > 0.01  # the shake was smoothed out of the joints ...
    assert worst_joints <= 0.01  # ... and out of the mesh alike, to a cm


def test_a_track_holds_through_a_gap_and_hides_outside_its_frames(clip):
    tracks, recovered, out = clip
    gltf = pygltflib.GLTF2.load(out / "scene.glb")
    # Track 0 was not seen in frame 2: it stands as in frame 1.
    held = joint_positions(posed_at(gltf, 0.2))["track_0"]
    assert np.abs(held - expected_heads(tracks, recovered, 1, 0)).max() <= 1e-3
    for time_s, visible in ((0.0, False), (0.05, False), (0.1, True), (0.3, True), (0.35, True), (0.4, False)):
        body = skinned_people(posed_at(gltf, time_s))["track_1"]
        assert (np.ptp(body, axis=0).max() > 1.0) == visible, time_s  # hidden: shrunk to a point
    assert np.ptp(skinned_people(posed_at(gltf, 0.45))["track_0"], axis=0).max() > 1.0  # seen to the clip's end


def test_only_the_pose_bones_turn_and_all_is_float32(clip, body_model):
    _, _, out = clip
    gltf = pygltflib.GLTF2.load(out / "scene.glb")
    names = [node.name for node in gltf.nodes]
    assert {"track_0", "track_1", "track_0_skeleton", "track_1_skeleton", "camera", "floor"} <= set(names)
    for track in SEEN:
        skeleton = names.index(f"track_{track}_skeleton")
        channels = [c.target for c in gltf.animations[0].channels]
        turned = {names[t.node] for t in channels if t.path == "rotation" and t.node > skeleton + 1 and t.node <= skeleton + 104}
        assert turned == set(POSE_BONES)  # the other bones keep their first frame's rotation (one body throughout)
        hides = {"scale"} if track == 1 else set()  # track 0 is seen from the clip's first frame to its last
        assert {t.path for t in channels if t.node == skeleton} == {"translation", "rotation"} | hides
        assert {t.path for t in channels if t.node == skeleton + 1} == {"scale"}  # finish() scaled the body
    for sampler in gltf.animations[0].samplers:
        assert gltf.accessors[sampler.input].componentType == pygltflib.FLOAT
        assert gltf.accessors[sampler.output].componentType == pygltflib.FLOAT
        times = accessor_array(gltf, sampler.input)[:, 0]
        assert np.all(np.diff(times) > 0) and sampler.interpolation in ("LINEAR", "STEP")
    bvh = sorted(p.name for p in out.iterdir() if p.suffix == ".bvh")
    assert bvh == ["track_0.bvh", "track_1.bvh"]


def test_three_js_plays_it(clip):
    node_modules = ROOT / "scripts" / "glb_check" / "node_modules"
    if not (shutil.which("node") and (node_modules / "three").is_dir()):
        pytest.skip("three.js is not installed (npm install in scripts/glb_check)")
    _, _, out = clip
    done = subprocess.run(
        ["node", str(ROOT / "scripts" / "glb_check" / "threejs_check.mjs"), str(out / "scene.glb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skinned" in done.stdout and "animation clip" in done.stdout, done.stdout
