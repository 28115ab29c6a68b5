"""Rigged people: each body on Anny's own skeleton, as a glTF skin (``people_rigged.glb``; over
a clip, ``track``'s animated ``scene.glb``) and as BVH motion (``person_<id>.bvh``,
``track_<id>.bvh``), so Blender or three.js can pose it again or play it.

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

from metrichmsr._outputs import write_atomic
from metrichmsr.body import ANNY_TO_CAMERA, Skeleton
from metrichmsr.defaults import RIG_FORMATS
from metrichmsr.render import as_colors
from metrichmsr.scene.export import OPENCV_TO_GLTF, pbr_fields

#: Anny (z up, facing -y) -> glTF (y up) for a person standing upright facing the camera:
#: the frame of the BVH files' rest skeleton.
ANNY_TO_GLTF = np.diag(OPENCV_TO_GLTF) @ ANNY_TO_CAMERA.numpy().astype(np.float64)
#: BVH rotation channels, in the order they compose: R = Rz @ Rx @ Ry (scipy's intrinsic "ZXY").
BVH_ROTATION_ORDER = "ZXY"
#: Skinning influences per vertex in people_rigged.glb: two JOINTS/WEIGHTS sets of 4. Anny gives
#: up to 9; the few vertices with a 9th lose it (its weight renormalised onto the others).
GLTF_INFLUENCES = 8


def check_formats(formats: Sequence[str]) -> None:
    """ValueError naming what in ``formats`` is not one of ``defaults.RIG_FORMATS``."""
    unknown = [f for f in formats if f not in RIG_FORMATS]
    if unknown:
        raise ValueError(f"formats must be among {RIG_FORMATS}, got {unknown}")


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


class _GlbDocument:
    """A glTF binary being built in one buffer: Anny's people as skinned meshes, plain meshes,
    an animation. Nodes are listed in the order they are added; every one added is a root of
    the scene but a person's joints."""

    def __init__(self, skeleton: Skeleton | None = None, faces: np.ndarray | None = None):
        self.gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="metrichmsr"), scene=0)
        self.data = bytearray()
        self.skeleton = skeleton
        self.faces = faces
        self.roots: list[int] = []
        self._shared_skin: tuple[int, dict] | None = None  # the people's triangles and skinning, once

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

    def _node(self, node: pygltflib.Node, root: bool = True) -> int:
        self.gltf.nodes.append(node)
        if root:
            self.roots.append(len(self.gltf.nodes) - 1)
        return len(self.gltf.nodes) - 1

    def _mesh(self, name: str, vertices: np.ndarray, normals: np.ndarray, indices: int, material: dict, **skin) -> int:
        """A one-primitive mesh of (V, 3) float32 vertices and normals, triangles ``indices``
        (an accessor), material fields ``material`` (``scene.export.pbr_fields``); its index."""
        fields = dict(material)
        self.gltf.materials.append(
            pygltflib.Material(
                name=name,
                alphaMode=fields.pop("alphaMode"),
                doubleSided=fields.pop("doubleSided", False),
                pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(**fields),
            )
        )
        attributes = pygltflib.Attributes(
            POSITION=self.add(vertices, "VEC3", pygltflib.ARRAY_BUFFER, bounds=True),
            NORMAL=self.add(normals, "VEC3", pygltflib.ARRAY_BUFFER),
            **skin,
        )
        primitive = pygltflib.Primitive(attributes=attributes, indices=indices, material=len(self.gltf.materials) - 1)
        self.gltf.meshes.append(pygltflib.Mesh(name=name, primitives=[primitive]))
        return len(self.gltf.meshes) - 1

    def add_mesh(self, name: str, mesh: trimesh.Trimesh, material: dict) -> int:
        """A plain mesh node (vertices as they are: the glTF frame); its node index."""
        faces = self.add(np.asarray(mesh.faces, dtype=np.uint32).reshape(-1), "SCALAR", pygltflib.ELEMENT_ARRAY_BUFFER)
        vertices, normals = (np.asarray(a, dtype=np.float32) for a in (mesh.vertices, mesh.vertex_normals))
        return self._node(pygltflib.Node(name=name, mesh=self._mesh(name, vertices, normals, faces, material)))

    def add_person(
        self,
        name: str,
        color: tuple[float, float, float],
        rest_vertices: np.ndarray,
        rest_bone_poses: np.ndarray,
        placement: np.ndarray,
        joint_locals: np.ndarray,
    ) -> int:
        """One person as a skinned mesh on Anny's skeleton; the index of its skeleton node, whose
        joints follow it (bone ``b``'s node: that index + 1 + b).

        Nodes: the skinned mesh ``name`` (at the scene root with no transform, as glTF asks of
        skinned meshes: the joints place it) and ``<name>_skeleton``, transform ``placement``
        (4, 4) rigid, whose child is the root of the joint nodes, named as Anny's bones,
        transforms ``joint_locals`` (B, 4, 4) rigid, each relative to its parent. The mesh is
        ``rest_vertices`` (V, 3), the bind pose; the inverse bind matrices are the inverse
        ``rest_bone_poses`` (B, 4, 4). Skinning: JOINTS_0/WEIGHTS_0 and JOINTS_1/WEIGHTS_1
        (:data:`GLTF_INFLUENCES`), each vertex's largest influences first.
        """
        parents = np.asarray(self.skeleton.parents)
        if self._shared_skin is None:  # the same triangles and skinning in every person
            faces = np.asarray(self.faces, dtype=np.uint32).reshape(-1)
            indices = self.add(faces, "SCALAR", pygltflib.ELEMENT_ARRAY_BUFFER)
            bones, weights = _influences(self.skeleton, GLTF_INFLUENCES)
            skin_sets = {}
            for k in range(GLTF_INFLUENCES // 4):
                skin_sets[f"JOINTS_{k}"] = self.add(bones[:, 4 * k : 4 * k + 4], "VEC4", pygltflib.ARRAY_BUFFER)
                skin_sets[f"WEIGHTS_{k}"] = self.add(weights[:, 4 * k : 4 * k + 4], "VEC4", pygltflib.ARRAY_BUFFER)
            self._shared_skin = indices, skin_sets
        indices, skin_sets = self._shared_skin
        rest = np.asarray(rest_vertices, dtype=np.float32)
        normals = trimesh.Trimesh(rest, self.faces, process=False).vertex_normals.astype(np.float32)
        mesh = self._mesh(name, rest, normals, indices, pbr_fields(color), **skin_sets)
        # glTF matrices are column-major: each (4, 4) goes in transposed.
        inverse_bind = np.linalg.inv(np.asarray(rest_bone_poses, dtype=np.float64)).transpose(0, 2, 1)
        first_joint = len(self.gltf.nodes) + 2
        self.gltf.skins.append(
            pygltflib.Skin(
                name=name,
                joints=list(range(first_joint, first_joint + len(parents))),
                skeleton=first_joint,
                inverseBindMatrices=self.add(inverse_bind.astype(np.float32), "MAT4"),
            )
        )
        self._node(pygltflib.Node(name=name, mesh=mesh, skin=len(self.gltf.skins) - 1))
        skeleton_node = self._node(pygltflib.Node(name=f"{name}_skeleton", children=[first_joint], **_trs(placement)))
        for bone, (bone_name, local) in enumerate(zip(self.skeleton.bone_names, joint_locals)):
            children = [first_joint + int(c) for c in np.flatnonzero(parents == bone)]
            self._node(pygltflib.Node(name=bone_name, children=children, **_trs(local)), root=False)
        return skeleton_node

    def add_times(self, times_s: np.ndarray) -> int:
        """(T,) keyframe times, seconds, as an accessor the channels of one motion share; its index."""
        return self.add(np.asarray(times_s, dtype=np.float32), "SCALAR", bounds=True)  # glTF: inputs carry min and max

    def add_channel(
        self, animation: pygltflib.Animation, node: int, path: str, times: int, values: np.ndarray, step: bool = False
    ) -> None:
        """Animate ``node``'s ``path`` (translation, rotation, scale): keyframe times (the
        accessor :meth:`add_times` gave), (T, 3 or 4) values, float32; LINEAR (slerp for
        rotations) or STEP."""
        values = np.asarray(values, dtype=np.float32)
        output = self.add(values, "VEC4" if values.shape[1] == 4 else "VEC3")
        animation.samplers.append(
            pygltflib.AnimationSampler(input=times, output=output, interpolation="STEP" if step else "LINEAR")
        )
        target = pygltflib.AnimationChannelTarget(node=node, path=path)
        animation.channels.append(pygltflib.AnimationChannel(sampler=len(animation.samplers) - 1, target=target))

    def glb(self) -> bytes:
        """The file's bytes."""
        self.gltf.scenes.append(pygltflib.Scene(nodes=self.roots))
        self.gltf.buffers.append(pygltflib.Buffer(byteLength=len(self.data)))
        self.gltf.set_binary_blob(bytes(self.data))
        return b"".join(self.gltf.save_to_bytes())


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
    names = _names(names, len(rigs), "person")
    document = _GlbDocument(skeleton, faces)
    for rig, color, name in zip(rigs, colors, names):
        locals_ = relative_to_parents(rig.bone_poses, skeleton.parents)
        document.add_person(name, color, rig.rest_vertices, rig.rest_bone_poses, rig.to_gltf(), locals_)
    return document.glb()


def _names(names: Sequence[str] | None, count: int, prefix: str) -> list[str]:
    """``count`` unique node names: ``names``, default ``<prefix>_0``, ...; ValueError otherwise."""
    names = [f"{prefix}_{i}" for i in range(count)] if names is None else list(names)
    if len(names) != count or len(set(names)) != len(names):
        raise ValueError(f"names must be {count} unique strings, got {names!r}")
    return names


def write_rigged_glb(
    path: str | Path,
    rigs: Sequence[PersonRig],
    skeleton: Skeleton,
    faces: np.ndarray,
    colors: Sequence[tuple[float, float, float]] | None = None,
    names: Sequence[str] | None = None,
) -> None:
    """Write :func:`rigged_glb` to ``path`` atomically (``_outputs.write_atomic``)."""
    write_atomic(path, rigged_glb(rigs, skeleton, faces, colors, names))


@dataclass
class RigMotion:
    """One person's motion on their own rest skeleton: a track, as the animated scene.glb has it.

    rest_vertices: (V, 3) the rest mesh, the skin's bind pose, Anny frame, metres.
    rest_bone_poses: (B, 4, 4) each bone's world transform at rest, Anny frame.
    times_s: (T,) its keyframes' times, increasing, seconds.
    roots: (T, 3) the root bone's head, glTF frame, metres.
    rotations: (T, B, 3, 3) each bone's world rotation on the rest skeleton
        :meth:`BvhSkeleton.of` gives (:func:`bvh_pose`'s), glTF frame.
    scales: (T,) the body's uniform scale about its root bone's head (None: 1 throughout).
    """

    rest_vertices: np.ndarray
    rest_bone_poses: np.ndarray
    times_s: np.ndarray
    roots: np.ndarray
    rotations: np.ndarray
    scales: np.ndarray | None = None


#: A bone turning less than this (radians, about) relative to its parent over all keyframes
#: keeps its first keyframe's rotation, unanimated. Anny's bones but its pose bones
#: (``body.POSE_BONES``) keep their rotation relative to their parent as a body moves, though
#: not the rest skeleton's (its bones with every pose rotation the identity are a few degrees
#: off its rest bones, by the body's shape): so only the pose bones are animated.
STILL_BONE_RAD = 1e-4


def animated_glb(
    motions: Sequence[RigMotion],
    skeleton: Skeleton | None,
    faces: np.ndarray | None,
    clip_times_s: np.ndarray,
    props: Sequence[tuple[str, trimesh.Trimesh, dict]] = (),
    colors: Sequence[tuple[float, float, float]] | None = None,
    names: Sequence[str] | None = None,
) -> bytes:
    """The glTF binary of people moving over a clip: one glTF animation, ``"clip"``, whose time
    is the clip's (seconds).

    Each motion (``names``, default ``"person_0"``, ...) is a skinned mesh on Anny's skeleton as
    in :func:`rigged_glb`, its rest body and skeleton the motion's own. The ``<name>_skeleton``
    node carries the root bone's turn and place at each keyframe (translation, rotation:
    LINEAR, slerp for the rotation); the joint nodes hold their transform relative to their
    parent at the first keyframe (their heads where the rest skeleton has them), but for the
    bones that turn (rotation, LINEAR; :data:`STILL_BONE_RAD`): Anny's pose bones; with
    ``scales``, the root joint's scale (LINEAR). The bones' world rotations and, at scale 1, heads are
    those of the BVH file of the same motion (:func:`bvh_text`).
    Outside its keyframes a motion is hidden: its skeleton node's scale steps (STEP) to 0 from
    the clip's start (``clip_times_s[0]``) to its first keyframe, and from the first time in
    ``clip_times_s`` after its last; it is 1 in between. The nodes' own TRS are the first
    keyframe's, what a viewer shows without playing the animation. ``props``: plain meshes
    (name, mesh in the glTF frame, material fields as ``scene.export.pbr_fields``), such as the
    camera and the floor. Float32 throughout; colours as :func:`rigged_glb`. With no
    motions (a clip where nobody was seen) ``skeleton`` and ``faces`` may be None: the props
    alone, and no animation.
    """
    colors = as_colors(colors, len(motions))
    names = _names(names, len(motions), "person")
    clip_times_s = np.asarray(clip_times_s, dtype=np.float64)
    document = _GlbDocument(skeleton, faces)
    animation = pygltflib.Animation(name="clip", samplers=[], channels=[])
    parents = None if skeleton is None else np.asarray(skeleton.parents)
    for motion, color, name in zip(motions, colors, names):
        rest = np.asarray(motion.rest_bone_poses, dtype=np.float64)
        turn = np.asarray(motion.rotations, dtype=np.float64) @ ANNY_TO_GLTF  # (T, B, 3, 3): S G_c, module docstring
        # The skeleton node maps the rest root bone onto its posed place: rotation S G_0, and
        # the root's head onto ``roots``.
        placement = np.tile(np.eye(4), (len(turn), 1, 1))
        placement[:, :3, :3] = turn[:, 0]
        placement[:, :3, 3] = motion.roots - turn[:, 0] @ rest[0, :3, 3]
        # Joint c's world rotation S G_c R_c, relative to its parent's (the root's: the
        # placement's), its head where the rest skeleton has it from its parent's.
        locals_ = np.tile(relative_to_parents(rest, parents), (len(turn), 1, 1, 1))  # (T, B, 4, 4)
        child = parents >= 0
        locals_[:, child, :3, :3] = relative_to_parents(turn @ rest[:, :3, :3], parents)[:, child]
        moving = np.abs(locals_[..., :3, :3] - locals_[:1, :, :3, :3]).max(axis=(0, 2, 3)) > STILL_BONE_RAD
        node = document.add_person(name, color, motion.rest_vertices, rest, placement[0], locals_[0])
        times = document.add_times(motion.times_s)
        document.add_channel(animation, node, "translation", times, placement[:, :3, 3])
        document.add_channel(animation, node, "rotation", times, _quaternions(placement[:, :3, :3]))
        for bone in np.flatnonzero(moving):
            document.add_channel(animation, node + 1 + int(bone), "rotation", times, _quaternions(locals_[:, bone, :3, :3]))
        # The scale goes on the root joint: the skeleton node's hides the body.
        if motion.scales is not None and not np.allclose(motion.scales, 1.0, rtol=0.0, atol=1e-6):
            document.gltf.nodes[node + 1].scale = [float(motion.scales[0])] * 3
            document.add_channel(animation, node + 1, "scale", times, np.repeat(np.asarray(motion.scales)[:, None], 3, axis=1))
        first, last = motion.times_s[0], motion.times_s[-1]
        later = clip_times_s[clip_times_s > last]
        shown = [(clip_times_s[0], 0.0)] if clip_times_s[0] < first else []
        shown += [(first, 1.0)] + ([(later[0], 0.0)] if len(later) else [])
        if len(shown) > 1:
            keys, scales = np.array(shown).T
            scales = np.repeat(scales[:, None], 3, axis=1)
            document.add_channel(animation, node, "scale", document.add_times(keys), scales, step=True)
    for name, mesh, material in props:
        document.add_mesh(name, mesh, material)
    if animation.channels:
        document.gltf.animations.append(animation)
    return document.glb()


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, 4) glTF quaternions (x, y, z, w) of (T, 3, 3) rotations, each on the same side of
    the sphere as the one before, so that slerp between keyframes takes the short way."""
    quaternions = Rotation.from_matrix(rotations).as_quat()
    flips = np.where(np.sum(quaternions[1:] * quaternions[:-1], axis=1) < 0, -1.0, 1.0)
    return quaternions * np.concatenate(([1.0], np.cumprod(flips)))[:, None]


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
