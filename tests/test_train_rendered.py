"""train.rendered: BlazePose's detections of rendered scenes, paired with their truth, as training data."""

import dataclasses

import numpy as np
import pytest
import torch

from metrichmsr.errors import InputError
from metrichmsr.geometry import project_points
from metrichmsr.models.humanmoe import HumanMoE
from metrichmsr.models.tokens import HumanInputs
from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig
from metrichmsr.synth.dataset import write_dataset
from metrichmsr.train import rendered
from metrichmsr.train.data import PeopleTargets
from metrichmsr.train.rendered import DETECTIONS_FILE, RenderedPeople, matched_people
from metrichmsr.train.trainer import TrainConfig, train

# Near and whole, so BlazePose finds most of them in a few small images.
NEAR = SceneConfig(long_side_px=480, people=(1, 2), distance_m=(2.5, 6.0), fov_deg=(40.0, 70.0), min_in_frame=0.95)
TINY = TrainConfig(
    steps=2,
    batch_size=8,
    warmup_steps=1,
    eval_every=2,
    checkpoint_every=2,
    validation_size=16,
    model={"dim": 32, "depth": 1, "heads": 2, "expert_hidden": 32, "silhouette_grid": 16},
)


@pytest.fixture(scope="module")
def renders(tmp_path_factory, body_model, session_renderer):
    return write_dataset(tmp_path_factory.mktemp("renders") / "set", 4, 0, NEAR, body_model, session_renderer, progress=False)


def test_detections_are_paired_with_their_own_truth(renders):
    people = matched_people(renders, 16, progress=False)
    count = len(people["bbox"])
    assert count >= 3
    assert all(len(values) == count for values in people.values())
    assert people["silhouette"].shape == (count, 16, 16)
    # Each detection's hips land on the projection of its own person's true hips.
    true_uv = project_points(people["K"].astype(np.float64), people["joints"].astype(np.float64))
    box_height = people["bbox"][:, 3] - people["bbox"][:, 1]
    for blazepose_index, joint_index in ((23, 11), (24, 12)):  # left, right hip
        error = np.linalg.norm(people["landmarks2d"][:, blazepose_index, :2] - true_uv[:, joint_index], axis=-1)
        assert np.all(error < 0.15 * box_height)
    assert np.allclose(people["translation"], people["joints"][:, 11:13].mean(1), atol=1e-4)


def test_detections_are_cached_per_silhouette_grid(renders, monkeypatch):
    first = matched_people(renders, 16, progress=False)
    assert (renders / DETECTIONS_FILE).is_file()

    def no_detector(*args):
        raise AssertionError("BlazePose ran again")

    monkeypatch.setattr(rendered, "_detect_and_match", no_detector)
    again = matched_people(renders, 16, progress=False)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    with pytest.raises(AssertionError, match="ran again"):
        matched_people(renders, 32, progress=False)  # another grid: detected anew


def test_held_out_scenes_are_refused(tmp_path, body_model, session_renderer):
    held_out = write_dataset(tmp_path / "held", 1, HELD_OUT_SEED_START, NEAR, body_model, session_renderer, progress=False)
    with pytest.raises(InputError, match="held-out"):
        matched_people(held_out, 16, progress=False)


def test_batches_select_and_join(renders):
    people = RenderedPeople([renders], 16, seed=3, progress=False)
    inputs, targets = people.sample(5)
    assert len(inputs) == 5 and inputs.silhouette.shape == (5, 16, 16) and targets.joints.shape == (5, 23, 3)
    index = torch.tensor([4, 0])
    joined = HumanInputs.cat([inputs.select(index), inputs.select(torch.tensor([1]))])
    assert torch.equal(joined.keypoints2d, inputs.keypoints2d[[4, 0, 1]])
    assert torch.equal(joined.silhouette, inputs.silhouette[[4, 0, 1]])
    assert HumanInputs.cat([inputs, dataclasses.replace(inputs, silhouette=None)]).silhouette is None
    both = PeopleTargets.cat([targets.select(index), targets])
    for name in ("phenotype", "bone_rotvec", "global_rotation", "translation"):
        truth = getattr(targets.params, name)
        assert torch.equal(getattr(both.params, name), torch.cat((truth[index], truth)))
    assert torch.equal(both.joints, torch.cat((targets.joints[index], targets.joints)))


def test_training_mixes_renders_and_starts_from_weights(tmp_path, renders, body_model):
    start = train(TINY, tmp_path / "start", progress=False)
    tuned = train(
        dataclasses.replace(TINY, rendered_data=[str(renders)], rendered_share=0.5, init_weights=str(start)),
        tmp_path / "tuned",
        progress=False,
    )
    before, after = HumanMoE.load(start).state_dict(), HumanMoE.load(tuned).state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    only_renders = train(
        dataclasses.replace(TINY, rendered_data=[str(renders)], rendered_share=1.0), tmp_path / "real", progress=False
    )
    assert HumanMoE.load(only_renders).config.silhouette_grid == 16


def test_bad_rendered_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="needs rendered_data"):
        TrainConfig(rendered_share=0.3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        TrainConfig(rendered_data=["x"], rendered_share=1.5)
    other = HumanMoE()
    other.save(tmp_path / "other.pt")
    # Each is refused before the run folder is made.
    with pytest.raises(InputError, match="architecture differs"):
        train(dataclasses.replace(TINY, init_weights=str(tmp_path / "other.pt")), tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="no such file"):
        train(dataclasses.replace(TINY, init_weights=str(tmp_path / "missing.pt")), tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="not a synth folder"):
        train(dataclasses.replace(TINY, rendered_data=[str(tmp_path)], rendered_share=0.5), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_backbone_network_trains_on_renders_and_recovers(tmp_path, renders):
    transformers = pytest.importorskip("transformers")
    from metrichmsr.pipeline import Recoverer
    from metrichmsr.synth.dataset import list_samples, load_sample

    vit = transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    transformers.ViTModel(vit, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    model = dict(TINY.model, backbone=f"hf:{tmp_path / 'vit'}", backbone_image_size=32)
    with pytest.raises(ValueError, match="only rendered people have"):
        TrainConfig(model=model, rendered_data=[str(renders)], rendered_share=0.5)
    config = dataclasses.replace(TINY, model=model, rendered_data=[str(renders)], rendered_share=1.0, validation_size=2)
    weights = train(config, tmp_path / "run", progress=False)
    scene = load_sample(list_samples(renders)[0])
    with Recoverer(device="cpu", weights=weights) as recoverer:
        result = recoverer.infer(scene.image, K=scene.K)
        assert result.people and all(np.isfinite(p.translation).all() for p in result.people)
        observations = [o for o in recoverer.detect(scene.image) if o.score > 0]
        with pytest.raises(ValueError, match="reads image crops: pass the image"):
            recoverer.fit_people(observations, scene.K)
