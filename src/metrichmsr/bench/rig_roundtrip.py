"""Round trip of the rigged exports: re-posed from their own saved rotations, do they give back
``result.json``'s joints?

``python -m metrichmsr.bench.rig_roundtrip OUT`` (a ``recover --format glb,bvh`` folder) reads
``people_rigged.glb`` with ``pygltflib`` and skins it with numpy from the file's own accessors
(joint node world matrices times inverse bind matrices, JOINTS/WEIGHTS), regresses the COCO
joints with Anny's keypoint regressor and compares them with ``result.json``'s ``joints3d``;
then reads each ``person_<id>.bvh`` with ``bvhio`` and compares its bones' positions with the
glb's joints. Prints a table per person and a summary line; target (issue 24): within 1 mm.

For a ``track`` folder (``tracks.json``, and ``scene.glb`` from ``--format glb``) it plays
scene.glb's animation at each frame's time (:func:`posed_at`) and compares the skinned joints
with tracks.json's, per track: its first frame is the body its rest skeleton is, so the target
holds there; later frames are that body in their pose, so they differ by how much the frame's
own recovered body differs from it (shape), as the BVH file does. ``skinned_people``,
``joint_positions`` and ``posed_at`` are what the tests read the glb with too.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation, Slerp

from metrichmsr.scene.export import OPENCV_TO_GLTF

TARGET_MM = 1.0


def node_worlds(gltf: pygltflib.GLTF2) -> np.ndarray:
    """(N, 4, 4) every node's world matrix, from its TRS and its parents'."""
    local = []
    for node in gltf.nodes:
        if node.matrix is not None:
            raise ValueError(f"node {node.name!r}: a matrix where the rig writes TRS")
        matrix = np.eye(4)
        matrix[:3, :3] = Rotation.from_quat(node.rotation or [0, 0, 0, 1]).as_matrix() * (node.scale or [1, 1, 1])
        matrix[:3, 3] = node.translation or [0, 0, 0]
        local.append(matrix)
    world: list = [None] * len(gltf.nodes)

    def visit(index: int, parent: np.ndarray) -> None:
        world[index] = parent @ local[index]
        for child in gltf.nodes[index].children:
            visit(child, world[index])

    for root in gltf.scenes[gltf.scene].nodes:
        visit(root, np.eye(4))
    return np.stack(world)


def accessor_array(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    """(count, width) an accessor's data as the file stores it (float32, uint8 or uint32)."""
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_BYTE: np.uint8, pygltflib.UNSIGNED_INT: np.uint32}
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[accessor.type]
    data = gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]
    return np.frombuffer(data, dtype=dtype[accessor.componentType]).reshape(accessor.count, width)


def posed_at(gltf: pygltflib.GLTF2, time_s: float, animation: int = 0) -> pygltflib.GLTF2:
    """``gltf`` (sharing its buffers) with every node its animation gives at ``time_s`` seconds
    set to the value sampled there: LINEAR (slerp for rotations) or STEP, held before the first
    keyframe and after the last, as the glTF specification has it. ``time_s`` is rounded to
    float32 first, as the file's keyframe times are: a frame's time is then its keyframe's."""
    time_s = np.float32(time_s)
    posed = copy.copy(gltf)
    posed.nodes = [copy.copy(node) for node in gltf.nodes]
    for channel in gltf.animations[animation].channels:
        sampler = gltf.animations[animation].samplers[channel.sampler]
        times, values = accessor_array(gltf, sampler.input)[:, 0], accessor_array(gltf, sampler.output).astype(np.float64)
        after = int(np.searchsorted(times, time_s, side="right"))  # keyframes at or before time_s
        if after == 0 or after == len(times) or sampler.interpolation == "STEP":
            value = values[max(after - 1, 0)]
        else:
            t = (time_s - times[after - 1]) / (times[after] - times[after - 1])
            if channel.target.path == "rotation":
                pair = Rotation.from_quat(values[after - 1 : after + 1])
                value = Slerp([0.0, 1.0], pair)(t).as_quat()
            else:
                value = (1 - t) * values[after - 1] + t * values[after]
        setattr(posed.nodes[channel.target.node], channel.target.path, value.tolist())
    return posed


def skinned_people(gltf: pygltflib.GLTF2) -> dict[str, np.ndarray]:
    """Each skinned mesh node's name -> its (V, 3) posed vertices, glTF frame, metres: linear
    blend skinning with the joint nodes' world matrices times the inverse bind matrices."""
    worlds = node_worlds(gltf)
    people = {}
    for node in gltf.nodes:
        if node.skin is None:
            continue
        skin = gltf.skins[node.skin]
        inverse_bind = accessor_array(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
        joint_matrices = worlds[skin.joints] @ inverse_bind  # (J, 4, 4)
        attributes = gltf.meshes[node.mesh].primitives[0].attributes
        rest = accessor_array(gltf, attributes.POSITION).astype(np.float64)
        joints = np.concatenate([accessor_array(gltf, attributes.JOINTS_0), accessor_array(gltf, attributes.JOINTS_1)], axis=1)
        weights = np.concatenate([accessor_array(gltf, attributes.WEIGHTS_0), accessor_array(gltf, attributes.WEIGHTS_1)], axis=1)
        blended = np.einsum("vk,vkij->vij", weights, joint_matrices[joints])  # (V, 4, 4)
        people[node.name] = np.einsum("vij,vj->vi", blended[:, :3], np.concatenate([rest, np.ones((len(rest), 1))], 1))
    return people


def joint_positions(gltf: pygltflib.GLTF2) -> dict[str, np.ndarray]:
    """Each skinned mesh node's name -> its skeleton's (J, 3) joint positions (bone heads),
    glTF frame, in the skin's joint order."""
    worlds = node_worlds(gltf)
    return {node.name: worlds[gltf.skins[node.skin].joints][:, :3, 3] for node in gltf.nodes if node.skin is not None}


def bvh_positions(path: Path) -> np.ndarray:
    """(J, 3) the first frame's joint positions of a BVH file (``bvhio``'s forward kinematics)."""
    import bvhio

    root = bvhio.readAsHierarchy(str(path))
    root.loadPose(0)
    return np.array([list(joint.PositionWorld) for joint, _, _ in root.layout()])


def track_joint_errors_mm(gltf: pygltflib.GLTF2, document: dict, keypoints) -> dict[int, np.ndarray]:
    """Track id -> (F,) its largest joint error (mm) in each frame it was seen in, in time order:
    ``track``'s scene.glb animated to the frame's time, skinned and regressed to the COCO joints
    by ``keypoints`` (``BodyModel.keypoints``), against tracks.json's (``document``) joints3d."""
    import torch

    errors: dict[int, list[float]] = {}
    for frame in document["frames"]:
        people = skinned_people(posed_at(gltf, frame["time_s"]))
        for person in frame["people"]:
            camera = people[f"track_{person['track_id']}"] * OPENCV_TO_GLTF
            joints = keypoints({"vertices": torch.tensor(camera[None], dtype=torch.float32)})[0].numpy()
            error = np.linalg.norm(joints - np.array(list(person["joints3d"].values())), axis=1).max()
            errors.setdefault(person["track_id"], []).append(1000 * float(error))
    return {track: np.array(e) for track, e in sorted(errors.items())}


def _track_main(folder: Path, body) -> int:
    """The round trip of a ``track`` folder's scene.glb (module docstring)."""
    errors = track_joint_errors_mm(
        pygltflib.GLTF2.load(folder / "scene.glb"), json.loads((folder / "tracks.json").read_text()), body.keypoints
    )
    print("| track | frames | first frame: max (mm) | all frames: max (mm) | mean (mm) |")
    print("| --- | --- | --- | --- | --- |")
    for track, mm in errors.items():
        print(f"| {track} | {len(mm)} | {mm[0]:.3f} | {mm.max():.3f} | {mm.mean():.3f} |")
    first = max((mm[0] for mm in errors.values()), default=0.0)
    met = first <= TARGET_MM
    print(
        f"track round trip: {len(errors)} tracks, worst joint at a track's first frame {first:.3f} mm, over all frames "
        f"{max((mm.max() for mm in errors.values()), default=0.0):.3f} mm; target <= {TARGET_MM:g} mm at the first frames "
        f"{'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metrichmsr.bench.rig_roundtrip", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a `recover --format glb,bvh` or `track` output folder")
    args = parser.parse_args(argv)
    if (args.folder / "tracks.json").is_file():
        if not (args.folder / "scene.glb").is_file():
            parser.error(f"{args.folder / 'scene.glb'}: no such file (track --format glb writes it)")
        from metrichmsr.body import BodyModel

        return _track_main(args.folder, BodyModel())
    glb_path, result_path = args.folder / "people_rigged.glb", args.folder / "result.json"
    for path in (glb_path, result_path):
        if not path.is_file():
            parser.error(f"{path}: no such file (recover --format glb,bvh writes it)")

    import torch

    from metrichmsr.body import BodyModel

    body = BodyModel()
    gltf = pygltflib.GLTF2.load(glb_path)
    people, heads = skinned_people(gltf), joint_positions(gltf)
    records = json.loads(result_path.read_text())["people"]
    print("| person | joints vs result.json: max (mm) | mean (mm) | BVH bones vs glb joints: max (mm) |")
    print("| --- | --- | --- | --- |")
    worst = {"glb": 0.0, "bvh": 0.0}
    for record in records:
        name = f"person_{record['id']}"
        camera = people[name] * OPENCV_TO_GLTF
        joints = body.keypoints({"vertices": torch.tensor(camera[None], dtype=torch.float32)})[0].numpy()
        error_mm = 1000 * np.linalg.norm(joints - np.array(list(record["joints3d"].values())), axis=1)
        bvh_path = args.folder / f"{name}.bvh"
        bvh_mm = 1000 * np.linalg.norm(bvh_positions(bvh_path) - heads[name], axis=1).max() if bvh_path.is_file() else None
        worst["glb"] = max(worst["glb"], error_mm.max())
        worst["bvh"] = max(worst["bvh"], bvh_mm or 0.0)
        bvh_text = "-" if bvh_mm is None else f"{bvh_mm:.3f}"
        print(f"| {record['id']} | {error_mm.max():.3f} | {error_mm.mean():.3f} | {bvh_text} |")
    met = worst["glb"] <= TARGET_MM and worst["bvh"] <= TARGET_MM
    print(
        f"rig round trip: {len(records)} people, worst joint {worst['glb']:.3f} mm (glb), worst bone {worst['bvh']:.3f} mm "
        f"(BVH); target <= {TARGET_MM:g} mm {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
