"""Rigged people: each body on Anny's own skeleton, as a glTF skin (``people_rigged.glb``) and as
BVH motion (``person_<id>.bvh``, ``track_<id>.bvh``), so Blender or three.js can pose it again.

Both files keep Anny's 104 bones, named and ordered as Anny names and orders them (a parent
always before its children), and are written in scene.glb's frame: the OpenCV camera frame
turned 180 degrees about x, ``(x, y, z) -> (x, -y, -z)``, so y is up, the camera sits at the
origin looking down -z, and a person stands where scene.glb has them. Metres throughout.

The skeleton's rotations are Anny's own. With a bone's rest world transform ``P_c = [R_c | h_c]``
(head ``h_c``) and its posed one ``W_c``, ``G_c = W_c[:3, :3] R_c^T`` is the bone's turn in world
axes, and a bone's posed head is its parent's posed head plus ``G_p (h_c - h_p)``: the chain a
BVH file describes, with offsets ``h_c - h_p`` and local rotations ``G_p^T G_c``. Skinning is
linear blend skinning with ``W_c P_c^-1``, which glTF computes as the joint node's world
matrix times the inverse bind matrix ``P_c^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pygltflib
import trimesh
from scipy.spatial.transform import Rotation

from metrichmsr.body import ANNY_TO_CAMERA, Skeleton
from metrichmsr.render import as_colors, srgb_to_linear
from metrichmsr.scene.export import OPENCV_TO_GLTF, write_atomic

#: Anny (z up, facing -y) -> glTF (y up) for a person standing upright facing the camera:
#: the frame of the BVH files' rest skeleton.
ANNY_TO_GLTF = np.diag(OPENCV_TO_GLTF) @ ANNY_TO_CAMERA.numpy().astype(np.float64)
#: BVH rotation channels, in the order they compose: R = Rz @ Rx @ Ry (scipy's intrinsic "ZXY").
BVH_ROTATION_ORDER = "ZXY"
#: Skinning influences per vertex in people_rigged.glb: two JOINTS/WEIGHTS sets of 4. Anny gives
#: up to 9; the few vertices with a 9th lose it (its weight renormalised onto the others).
GLTF_INFLUENCES = 8


@dataclass
class PersonRig:
    """One person's body on Anny's skeleton: what the rigged exports write.

    rest_vertices: (V, 3) the rest (A-pose) mesh, the skin's bind pose, Anny frame, metres.
    rest_bone_poses: (104, 4, 4) each bone's world transform at rest (orientation, head), Anny frame.
    bone_poses: (104, 4, 4) the same, posed.
    to_camera: (4, 4) rigid map Anny frame -> OpenCV camera frame (``BodyOutput.to_camera``).
    """

    rest_vertices: np.ndarray
    rest_bone_poses: np.ndarray
    bone_poses: np.ndarray
    to_camera: np.ndarray

    def to_gltf(self) -> np.ndarray:
        """(4, 4) rigid map Anny frame -> glTF frame (scene.glb's)."""
        return np.diag([*OPENCV_TO_GLTF, 1.0]) @ np.asarray(self.to_camera, dtype=np.float64)


def relative_to_parents(transforms: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(..., B, n, n) each bone's transform relative to its parent's (the root's: its own),
    from world transforms (..., B, n, n) (rigid 4 x 4, or 3 x 3 rotations) and (B,) parent
    indices (-1: root)."""
    transforms = np.asarray(transforms, dtype=np.float64)
    parents = np.asarray(parents)
    local = transforms.copy()
    child = np.flatnonzero(parents >= 0)
    local[..., child, :, :] = np.linalg.inv(transforms[..., parents[child], :, :]) @ transforms[..., child, :, :]
    return local


def _trs(matrix: np.ndarray) -> dict:
    """glTF node TRS (translation, quaternion x, y, z, w) of a rigid (4, 4) transform."""
    return {
        "translation": [float(v) for v in matrix[:3, 3]],
        "rotation": [float(v) for v in Rotation.from_matrix(matrix[:3, :3]).as_quat()],
    }


def _influences(skeleton: Skeleton, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(V, count) bone indices and weights (summing to 1): each vertex's ``count`` largest influences."""
    bones = np.zeros((len(skeleton.vertex_bones), count), dtype=np.uint8)  # 104 bones fit a byte
    weights = np.zeros((len(skeleton.vertex_bones), count), dtype=np.float64)
    kept = min(count, skeleton.vertex_bones.shape[1])
    bones[:, :kept] = skeleton.vertex_bones[:, :kept]
    weights[:, :kept] = skeleton.vertex_weights[:, :kept]
    weights /= weights.sum(axis=1, keepdims=True)
    weights[weights == 0] = 0.0  # glTF: unused influences have weight 0 (and any joint index)
    return bones, weights.astype(np.float32)


class _Buffer:
    """One glTF binary buffer: arrays appended as accessors, 4-byte aligned."""

    def __init__(self, gltf: pygltflib.GLTF2):
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """Append ``array`` (N, ...) as an accessor of type ``kind`` (SCALAR, VEC3, MAT4, ...); its index."""
        array = np.ascontiguousarray(array)
        component = {
            np.dtype(np.float32): pygltflib.FLOAT,
            np.dtype(np.uint8): pygltflib.UNSIGNED_BYTE,
            np.dtype(np.uint32): pygltflib.UNSIGNED_INT,
        }[array.dtype]
        self.data.extend(b"\0" * (-len(self.data) % 4))
        view = pygltflib.BufferView(buffer=0, byteOffset=len(self.data), byteLength=array.nbytes, target=target)
        self.data.extend(array.tobytes())
        self.gltf.bufferViews.append(view)
        flat = array.reshape(len(array), -1)
        accessor = pygltflib.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1,
            componentType=component,
            count=len(array),
            type=kind,
            min=flat.min(axis=0).tolist() if bounds else None,
            max=flat.max(axis=0).tolist() if bounds else None,
        )
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def rigged_glb(
    rigs: Sequence[PersonRig],
    skeleton: Skeleton,
    faces: np.ndarray,
    colors: Sequence[tuple[float, float, float]] | None = None,
    names: Sequence[str] | None = None,
) -> bytes:
    """The glTF binary of people as skinned meshes on Anny's skeleton, posed as recovered.

    Per person (``names``, default ``"person_0"``, ...): a skinned mesh node ``person_i`` (at
    the scene root with no transform, as glTF asks of skinned meshes: the joints place it)
    and a node ``person_i_skeleton`` carrying the person's rigid Anny -> glTF map, whose child
    is the root of the 104 joint nodes, named as Anny's bones (the same names in every person;
    Blender keeps them, one armature each). The mesh is the rest (A-pose) body in Anny's frame,
    the bind pose; the inverse bind matrices are the inverse rest bone transforms; each joint
    node's TRS is its posed transform relative to its parent, so the file opens in the
    recovered pose, placed as in scene.glb, and re-poses by turning the joint nodes.
    Skinning: JOINTS_0/WEIGHTS_0 and JOINTS_1/WEIGHTS_1 (:data:`GLTF_INFLUENCES`), each
    vertex's largest influences first (a viewer reading one set, as three.js does, gets the
    four largest). Colours: sRGB in [0, 1], one per person (default the overlay's).
    """
    colors = as_colors(colors, len(rigs))
    names = [f"person_{i}" for i in range(len(rigs))] if names is None else list(names)
    if len(names) != len(rigs) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(rigs)} unique strings, got {names!r}")
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="metrichmsr"), scene=0)
    buffer = _Buffer(gltf)
    faces = np.asarray(faces, dtype=np.uint32)
    bones, weights = _influences(skeleton, GLTF_INFLUENCES)
    parents = np.asarray(skeleton.parents)
    # Shared by every person: triangles and skinning.
    indices = buffer.add(faces.reshape(-1), "SCALAR", pygltflib.ELEMENT_ARRAY_BUFFER)
    skin_sets = {}
    for k in range(GLTF_INFLUENCES // 4):
        skin_sets[f"JOINTS_{k}"] = buffer.add(bones[:, 4 * k : 4 * k + 4], "VEC4", pygltflib.ARRAY_BUFFER)
        skin_sets[f"WEIGHTS_{k}"] = buffer.add(weights[:, 4 * k : 4 * k + 4], "VEC4", pygltflib.ARRAY_BUFFER)
    roots = []
    for rig, color, name in zip(rigs, colors, names):
        rest = np.asarray(rig.rest_vertices, dtype=np.float32)
        normals = trimesh.Trimesh(rest, faces, process=False).vertex_normals.astype(np.float32)
        attributes = pygltflib.Attributes(
            POSITION=buffer.add(rest, "VEC3", pygltflib.ARRAY_BUFFER, bounds=True),
            NORMAL=buffer.add(normals, "VEC3", pygltflib.ARRAY_BUFFER),
            **skin_sets,
        )
        gltf.materials.append(
            pygltflib.Material(
                name=name,
                pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                    baseColorFactor=[*srgb_to_linear(color), 1.0], metallicFactor=0.0, roughnessFactor=0.7
                ),
            )
        )
        primitive = pygltflib.Primitive(attributes=attributes, indices=indices, material=len(gltf.materials) - 1)
        gltf.meshes.append(pygltflib.Mesh(name=name, primitives=[primitive]))
        # glTF matrices are column-major: each (4, 4) goes in transposed.
        inverse_bind = np.linalg.inv(np.asarray(rig.rest_bone_poses, dtype=np.float64)).transpose(0, 2, 1)
        first_joint = len(gltf.nodes) + 2
        gltf.skins.append(
            pygltflib.Skin(
                name=name,
                joints=list(range(first_joint, first_joint + len(parents))),
                skeleton=first_joint,
                inverseBindMatrices=buffer.add(inverse_bind.astype(np.float32), "MAT4"),
            )
        )
        roots += [len(gltf.nodes), len(gltf.nodes) + 1]
        gltf.nodes.append(pygltflib.Node(name=name, mesh=len(gltf.meshes) - 1, skin=len(gltf.skins) - 1))
        gltf.nodes.append(pygltflib.Node(name=f"{name}_skeleton", children=[first_joint], **_trs(rig.to_gltf())))
        for bone, (bone_name, local) in enumerate(zip(skeleton.bone_names, relative_to_parents(rig.bone_poses, parents))):
            children = [first_joint + int(c) for c in np.flatnonzero(parents == bone)]
            gltf.nodes.append(pygltflib.Node(name=bone_name, children=children, **_trs(local)))
    gltf.scenes.append(pygltflib.Scene(nodes=roots))
    gltf.buffers.append(pygltflib.Buffer(byteLength=len(buffer.data)))
    gltf.set_binary_blob(bytes(buffer.data))
    return b"".join(gltf.save_to_bytes())


def write_rigged_glb(
    path: str | Path,
    rigs: Sequence[PersonRig],
    skeleton: Skeleton,
    faces: np.ndarray,
    colors: Sequence[tuple[float, float, float]] | None = None,
    names: Sequence[str] | None = None,
) -> None:
    """Write :func:`rigged_glb` to ``path`` atomically (``scene.export.write_atomic``)."""
    write_atomic(path, rigged_glb(rigs, skeleton, faces, colors, names))


@dataclass
class BvhSkeleton:
    """A rest skeleton in the glTF frame (y up, person facing +z), metres, Anny's bone order.

    names: (B,) str; parents: (B,) int (-1: root); offsets: (B, 3) each head from its parent's
    (the root's: zero, its place is in the motion); end_sites: (B, 3) where a leaf bone ends,
    from its head (its rest direction, as long as the segment to its parent).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    end_sites: np.ndarray

    @classmethod
    def of(cls, skeleton: Skeleton, rest_bone_poses: np.ndarray) -> "BvhSkeleton":
        """The rest skeleton of a body: Anny's ``skeleton`` with its (B, 4, 4) rest bone transforms."""
        parents = np.asarray(skeleton.parents)
        heads = np.asarray(rest_bone_poses, dtype=np.float64)[:, :3, 3]
        offsets = np.zeros_like(heads)
        offsets[parents >= 0] = heads[parents >= 0] - heads[parents[parents >= 0]]
        # Anny's bones point along their local y axis (Blender's convention).
        direction = np.asarray(rest_bone_poses, dtype=np.float64)[:, :3, 1]
        end_sites = direction * np.linalg.norm(offsets, axis=1, keepdims=True)
        return cls(tuple(skeleton.bone_names), parents, offsets @ ANNY_TO_GLTF.T, end_sites @ ANNY_TO_GLTF.T)


def bvh_pose(rig: PersonRig) -> tuple[np.ndarray, np.ndarray]:
    """One BVH frame of a posed body: the root's position (3,) and every bone's world rotation
    (B, 3, 3) on the rest skeleton :meth:`BvhSkeleton.of` gives, glTF frame, metres.

    With ``S`` the rotation of the Anny -> glTF map and ``F = ANNY_TO_GLTF``, a bone's world
    rotation on the BVH skeleton is ``S G_c F^T`` (``G_c`` as in the module docstring), which
    carries the offsets ``F (h_c - h_p)`` onto the posed heads.
    """
    to_gltf = rig.to_gltf()
    poses = np.asarray(rig.bone_poses, dtype=np.float64)
    rest = np.asarray(rig.rest_bone_poses, dtype=np.float64)
    turn = poses[:, :3, :3] @ rest[:, :3, :3].transpose(0, 2, 1)  # G_c
    world = to_gltf[:3, :3] @ turn @ ANNY_TO_GLTF.T
    root = to_gltf[:3, :3] @ poses[0, :3, 3] + to_gltf[:3, 3]
    return root, world


def bvh_text(skeleton: BvhSkeleton, root_positions: np.ndarray, world_rotations: np.ndarray, frame_time_s: float) -> str:
    """A BVH file: ``skeleton``'s HIERARCHY (joints depth first, children in Anny's order) and
    F frames of MOTION.

    The root has 6 channels (``Xposition Yposition Zposition Zrotation Xrotation Yrotation``),
    every other joint 3 (``Zrotation Xrotation Yrotation``: R = Rz Rx Ry), degrees; the root's
    position is absolute (its OFFSET is zero).

    Args:
        skeleton: the rest skeleton (:meth:`BvhSkeleton.of`).
        root_positions: (F, 3) metres, glTF frame.
        world_rotations: (F, B, 3, 3) each bone's world rotation on the rest skeleton (:func:`bvh_pose`).
        frame_time_s: seconds between frames.
    """
    parents = skeleton.parents
    children = [np.flatnonzero(parents == b).tolist() for b in range(len(parents))]
    lines, order = ["HIERARCHY"], []

    def joint(bone: int, depth: int) -> None:
        pad = "  " * depth
        order.append(bone)
        if parents[bone] < 0:
            lines.extend((f"{pad}ROOT {skeleton.names[bone]}", f"{pad}{{", f"{pad}  OFFSET {_numbers(np.zeros(3))}"))
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.extend((f"{pad}JOINT {skeleton.names[bone]}", f"{pad}{{", f"{pad}  OFFSET {_numbers(skeleton.offsets[bone])}"))
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for child in children[bone]:
            joint(child, depth + 1)
        if not children[bone]:
            lines.extend(
                (f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_numbers(skeleton.end_sites[bone])}", f"{pad}  }}")
            )
        lines.append(f"{pad}}}")

    for root in np.flatnonzero(parents < 0):
        joint(int(root), 0)
    local = relative_to_parents(world_rotations, parents)[:, order]  # (F, B, 3, 3)
    frames = len(local)
    angles = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler(BVH_ROTATION_ORDER, degrees=True).reshape(frames, -1)
    lines.extend(("MOTION", f"Frames: {frames}", f"Frame Time: {frame_time_s:.6f}"))
    lines.extend(f"{_numbers(p)} {_numbers(a)}" for p, a in zip(np.asarray(root_positions), angles))
    return "\n".join(lines) + "\n"


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in np.asarray(values).ravel())
