"""Rigged exports: people_rigged.glb, read back by an independent glTF reader and skinned with
numpy from the file's own accessors, reproduces result.json's joints; the BVH files, read back
by bvhio, reproduce Anny's posed bone heads; both keep Anny's bones, names and order."""

import json

import numpy as np
import pygltflib
import pytest
import torch
from scipy.spatial.transform import Rotation

from metrichmsr.bench.rig_roundtrip import skinned_people
from metrichmsr.body import POSE_BONES, BodyParams
from metrichmsr.camera import Intrinsics
from metrichmsr.result import PersonResult, RecoveryResult, posed_bodies
from metrichmsr.scene.export import OPENCV_TO_GLTF
from metrichmsr.scene.rig_export import BvhSkeleton, bvh_pose, bvh_text


@pytest.fixture(scope="module")
def saved(body_model, session_renderer, tmp_path_factory):
    """Two people, one turned and bent, saved with both rigged formats: (result, folder)."""
    generator = torch.Generator().manual_seed(3)
    params = BodyParams(
        phenotype=torch.tensor([[0.5, 0.77, 0.5, 0.5, 0.5, 0.5], [0.9, 0.4, 0.3, 0.7, 0.6, 0.4]]),
        bone_rotvec=0.4 * torch.randn(2, len(POSE_BONES), 3, generator=generator),
        global_rotation=torch.tensor(Rotation.from_rotvec([[0.0, 0.0, 0.0], [0.2, 2.5, -0.3]]).as_matrix(), dtype=torch.float32),
        translation=torch.tensor([[-0.4, 0.1, 3.0], [0.8, 0.3, 5.5]]),
    )
    people = [
        PersonResult(id=i, bbox=np.zeros(4), score=1.0, keypoints2d=np.zeros((33, 3)), **fields)
        for i, fields in enumerate(posed_bodies(body_model, params))
    ]
    image = np.full((240, 320, 3), 128, np.uint8)
    result = RecoveryResult(
        image,
        "grey.png",
        Intrinsics(300.0, 300.0, 159.5, 119.5, "user"),
        people,
        faces=body_model.faces.numpy(),
        skeleton=body_model.skeleton,
    )
    folder = result.save(tmp_path_factory.mktemp("rig") / "out", renderer=session_renderer, formats=("glb", "bvh"))
    return result, folder


def test_rigged_glb_reposes_to_result_joints(saved, body_model):
    result, folder = saved
    document = json.loads((folder / "result.json").read_text())
    people = skinned_people(pygltflib.GLTF2.load(folder / "people_rigged.glb"))
    assert sorted(people) == ["person_0", "person_1"]
    for person, record in zip(result.people, document["people"]):
        camera = people[f"person_{person.id}"] * OPENCV_TO_GLTF  # glTF -> camera frame
        joints = body_model.keypoints({"vertices": torch.tensor(camera[None], dtype=torch.float32)})[0].numpy()
        expected = np.array(list(record["joints3d"].values()))
        assert np.abs(joints - expected).max() <= 1e-3  # metres; measured ~0.06 mm (result.json rounds to 0.1 mm)
        assert np.abs(camera - person.vertices).max() <= 1e-3  # the mesh scene.glb holds


def test_rigged_glb_keeps_annys_skeleton(saved, body_model):
    _, folder = saved
    gltf = pygltflib.GLTF2.load(folder / "people_rigged.glb")
    names = [node.name for node in gltf.nodes]
    skeleton = body_model.skeleton
    for i, skin in enumerate(gltf.skins):
        mesh_node = names.index(f"person_{i}")
        assert gltf.nodes[mesh_node].skin == i
        assert [names[j] for j in skin.joints] == list(skeleton.bone_names)
        parent_of = {child: node for node, n in enumerate(gltf.nodes) for child in n.children}
        parents = [skin.joints.index(parent_of[j]) if j != skin.skeleton else -1 for j in skin.joints]
        assert parents == list(skeleton.parents)
        assert parent_of[skin.skeleton] == names.index(f"person_{i}_skeleton")


def test_bvh_reads_back_with_bvhio(saved, body_model):
    bvhio = pytest.importorskip("bvhio")
    result, folder = saved
    skeleton = body_model.skeleton
    for person in result.people:
        root = bvhio.readAsHierarchy(str(folder / f"person_{person.id}.bvh"))
        joints = [joint for joint, _, _ in root.layout()]  # depth first; End Sites are no joints
        assert [joint.Name for joint in joints] == list(skeleton.bone_names)
        root.loadPose(0)
        heads = np.array([list(joint.PositionWorld) for joint in joints])
        rig = person.rig
        expected = (rig.to_gltf() @ rig.bone_poses[:, :, 3].T).T[:, :3]  # posed heads, glTF frame
        assert np.abs(heads - expected).max() <= 1e-3


def test_bvh_frames_compose_to_posed_heads(saved, body_model, tmp_path):
    """Several frames of one body in one file (a track): bvhio's forward kinematics of each
    frame gives that frame's posed bone heads."""
    bvhio = pytest.importorskip("bvhio")
    result, _ = saved
    first = result.people[0]
    params = BodyParams(
        torch.tensor(first.phenotype[None]),
        torch.tensor(first.bone_rotvec[None]).flip(1),  # another pose of the same body
        torch.tensor(Rotation.from_rotvec([0.0, -1.0, 0.0]).as_matrix()[None], dtype=torch.float32),
        torch.tensor([[0.5, 0.2, 4.0]]),
    )
    rigs = [first.rig, posed_bodies(body_model, params)[0]["rig"]]
    poses = [bvh_pose(rig) for rig in rigs]
    path = tmp_path / "track.bvh"
    skeleton = BvhSkeleton.of(result.skeleton, first.rig.rest_bone_poses)
    path.write_text(bvh_text(skeleton, np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses]), 0.04))
    root = bvhio.readAsHierarchy(str(path))
    assert len(root.Keyframes) == 2
    for frame, rig in enumerate(rigs):
        root.loadPose(frame)
        heads = np.array([list(joint.PositionWorld) for joint, _, _ in root.layout()])
        assert np.abs(heads - (rig.to_gltf() @ rig.bone_poses[:, :, 3].T).T[:, :3]).max() <= 1e-3
