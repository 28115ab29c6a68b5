"""`metrichmsr train`: a few steps run, checkpoint, resume, log, curves and an exported network."""

import csv
import dataclasses
from importlib import resources

import pytest

from metrichmsr._outputs import is_ours
from metrichmsr.errors import InputError
from metrichmsr.models.humanmoe import HumanMoE, HumanMoEConfig
from metrichmsr.train.trainer import TrainConfig, _learning_rate, train

TINY = TrainConfig(
    steps=4,
    batch_size=8,
    warmup_steps=2,
    eval_every=2,
    checkpoint_every=2,
    validation_size=16,
    model={"dim": 32, "depth": 1, "heads": 2, "expert_hidden": 32},
)


def test_train_checkpoints_resumes_and_exports(tmp_path, body_model):
    exported = train(TINY, tmp_path / "run", progress=False)
    model = HumanMoE.load(exported)
    assert model.config.dim == 32
    with open(tmp_path / "run" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows if r["val_depth_median"]] == [2, 4]
    assert all(float(r["loss"]) > 0 for r in rows)
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    assert is_ours(tmp_path / "run")  # a later `train --overwrite` may start over there
    # Resume: two more steps from the checkpoint at step 4, appended to the same log.
    train(dataclasses.replace(TINY, steps=6), tmp_path / "run", resume=True, progress=False)
    with open(tmp_path / "run" / "log.csv") as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle) if r["val_depth_median"]]
    assert steps == [2, 4, 6]


def test_sampler_workers_feed_training(tmp_path, body_model):
    config = dataclasses.replace(TINY, steps=2, sampler_workers=2)
    model = HumanMoE.load(train(config, tmp_path / "run", progress=False))
    assert model.config.dim == 32
    with pytest.raises(ValueError, match="sampler_workers must be >= 0"):
        dataclasses.replace(TINY, sampler_workers=-1)


def test_fine_tuning_may_stop_reading_world_landmarks_but_not_change_layers(tmp_path, body_model):
    start = train(dataclasses.replace(TINY, steps=2), tmp_path / "start", progress=False)
    blind = dataclasses.replace(TINY, steps=2, init_weights=str(start), model={**TINY.model, "world_landmarks": False})
    assert HumanMoE.load(train(blind, tmp_path / "blind", progress=False)).config.world_landmarks == "none"
    wider = dataclasses.replace(TINY, steps=2, init_weights=str(start), model={**TINY.model, "dim": 64})
    with pytest.raises(InputError, match="architecture differs"):
        train(wider, tmp_path / "wider", progress=False)


def test_seed_must_stay_in_the_training_split(tmp_path):
    with pytest.raises(ValueError, match="below the validation and held-out seeds"):
        train(dataclasses.replace(TINY, seed=2_000_000), tmp_path / "run", progress=False)


def test_learning_rate_warms_up_then_decays():
    config = dataclasses.replace(TINY, steps=100, warmup_steps=10, learning_rate=1.0)
    rates = [_learning_rate(step, config) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[-1] == pytest.approx(0.05, abs=0.01)


def test_config_from_toml(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('steps = 12\n[model]\nffn = "dense"\n')
    config = TrainConfig.from_toml(path)
    assert config.steps == 12 and config.model == {"ffn": "dense"}
    shipped = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe.toml")
    assert HumanMoEConfig.from_dict(shipped.model).camera_encoding == "rays"
    renders = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_renders.toml")
    assert renders.rendered_share == 0.5 and renders.model == shipped.model  # fine-tunes the CPU recipe's network
    gpu = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_gpu.toml")
    gpu_renders = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_gpu_renders.toml")
    clothes = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_clothes.toml")
    assert gpu.model == gpu_renders.model == clothes.model == shipped.model and gpu.sampler_workers > 0
    assert clothes.init_weights == "out/train-gpu-renders/humanmoe.pt"  # stage 3 starts from stage 2
    without_world = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_without_world.toml")
    assert without_world.init_weights == "out/train-clothes/humanmoe.pt"  # the ablation starts from stage 3
    assert HumanMoEConfig.from_dict(without_world.model) == HumanMoEConfig.from_dict({**clothes.model, "world_landmarks": False})
    body_world = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_body_world.toml")
    assert body_world.init_weights == without_world.init_weights
    assert HumanMoEConfig.from_dict(body_world.model) == HumanMoEConfig.from_dict({**clothes.model, "world_landmarks": "body"})
    assert HumanMoE.load(resources.files("metrichmsr.models") / "weights" / "humanmoe.pt").config == HumanMoEConfig.from_dict(
        gpu.model
    )
    kneeling = TrainConfig.from_toml(resources.files("metrichmsr.train") / "humanmoe_kneeling.toml")
    assert kneeling.model == clothes.model and "kneeling" in kneeling.pose_families  # stage 3 plus kneeling people
    with pytest.raises(ValueError, match="unknown pose_families"):
        TrainConfig(pose_families=["cartwheel"])
    with pytest.raises(ValueError, match="sampler_workers"):
        TrainConfig(pose_families=["kneeling"], sampler_workers=2)
    path.write_text("stepz = 12\n")
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_toml(path)
