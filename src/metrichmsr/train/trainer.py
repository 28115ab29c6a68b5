"""`metrichmsr train`: HumanMoE trained on synthetic people, online, on this CPU (or a GPU).

Every batch is new: people from Anny's population prior in natural pose families, seen by
random cameras, with BlazePose's measured errors applied to their keypoints
(``train.data.SyntheticPeople``). The network's output goes through the body model, so the
losses are in metres and pixels:

- 3D joints, root-relative (m); the root's depth (log) and image-plane position;
- 2D reprojection of the joints under the true K, in box heights;
- phenotype (the body's age, height, ...) and the body's orientation (chordal distance);
- the mixture of experts' load-balancing loss.

Seeds stay below ``synth.HELD_OUT_SEED_START``; a fixed validation batch (its own seed) is
scored every ``eval_every`` steps. Checkpoints (model, optimiser, step) go to ``OUT/last.pt``
so ``--resume`` continues a run; ``OUT/humanmoe.pt`` is the exported network,
``OUT/log.csv`` and ``OUT/loss.png`` the curves.
"""

from __future__ import annotations

import csv
import math
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from metrichmsr._outputs import write_manifest
from metrichmsr.body import BodyModel
from metrichmsr.camera import project
from metrichmsr.errors import InputError
from metrichmsr.joints import HIPS

VALIDATION_SEED = 900_000
#: What a run writes into its folder: the checkpoint, the log, the curves, the exported network.
RUN_FILES = ("last.pt", "log.csv", "loss.png", "humanmoe.pt")


@dataclass
class TrainConfig:
    """What a run does; ``from_toml`` reads the same keys (``[model]`` holds HumanMoEConfig's)."""

    steps: int = 6000
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    seed: int = 0
    eval_every: int = 250
    checkpoint_every: int = 250
    validation_size: int = 512
    weight_joints: float = 1.0
    weight_depth: float = 1.0
    weight_offset: float = 1.0
    weight_reprojection: float = 0.5
    weight_phenotype: float = 0.5
    weight_orientation: float = 0.2
    weight_balance: float = 0.01
    #: ``metrichmsr synth`` folders (training seeds) whose people BlazePose really saw
    #: (``train.rendered``); from step ``rendered_from_step`` on, ``rendered_share`` of every
    #: batch is drawn from them.
    rendered_data: list[str] = field(default_factory=list)
    rendered_share: float = 0.0
    rendered_from_step: int = 0
    #: A network file to start from (fine-tuning); its architecture must be ``model``'s.
    init_weights: str = ""
    #: With an image backbone in ``model``: its pretrained weights (``models.backbone``; an
    #: ``hf:`` backbone defaults to its own folder). Backbone networks train on renders only,
    #: and are validated on ``validation_size`` rendered people set aside.
    backbone_weights: str = ""
    #: > 0: simulated people are drawn in this many worker processes (``ParallelPeople``),
    #: for a GPU, which one sampling process cannot keep busy; 0: in the training process.
    sampler_workers: int = 0
    #: The pose families simulated people are drawn from (``synth.poses``; the training
    #: process's sampler, ``sampler_workers = 0``); empty: ``POSE_FAMILIES``. Validation keeps
    #: ``POSE_FAMILIES``, so runs compare.
    pose_families: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.sampler_workers < 0:
            raise ValueError(f"sampler_workers must be >= 0, got {self.sampler_workers}")
        if not 0.0 <= self.rendered_share <= 1.0:
            raise ValueError(f"rendered_share must be in [0, 1], got {self.rendered_share}")
        if self.rendered_share > 0 and not self.rendered_data:
            raise ValueError("rendered_share > 0 needs rendered_data (synth folders)")
        from metrichmsr.synth import EXTRA_POSE_FAMILIES, POSE_FAMILIES

        families = POSE_FAMILIES + EXTRA_POSE_FAMILIES
        unknown = set(self.pose_families) - set(families)
        if unknown:
            raise ValueError(f"unknown pose_families {sorted(unknown)}; choose from {families}")
        if self.pose_families and self.sampler_workers:
            raise ValueError("pose_families needs sampler_workers = 0")
        if self.model.get("backbone") and (self.rendered_share < 1 or self.rendered_from_step > 0):
            raise ValueError(
                "a network with an image backbone reads crops, which only rendered people have: "
                "set rendered_share = 1.0 and rendered_from_step = 0"
            )

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainConfig":
        data = tomllib.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**data)


def losses(outputs: dict, inputs, targets, body: BodyModel, config: TrainConfig) -> dict[str, torch.Tensor]:
    """Weighted loss terms (scalars) of one batch; ``targets`` has BodyParams fields and joints (B, 23, 3)."""
    predicted = body.joints(outputs["phenotype"], outputs["bone_rotvec"], outputs["global_rotation"], outputs["translation"])
    true_joints = targets.joints
    root_pred = predicted[:, HIPS].mean(1, keepdim=True)
    root_true = true_joints[:, HIPS].mean(1, keepdim=True)
    joints_m = ((predicted - root_pred) - (true_joints - root_true)).norm(dim=-1).mean()
    true_translation = targets.params.translation
    depth = (outputs["log_depth"] - true_translation[:, 2].log()).abs().mean()
    offset = (
        (outputs["translation"][:, :2] / outputs["translation"][:, 2:] - true_translation[:, :2] / true_translation[:, 2:])
        .abs()
        .sum(-1)
        .mean()
    )
    box_height = (inputs.bbox[:, 3] - inputs.bbox[:, 1]).clamp(min=8.0)
    reprojection = ((project(inputs.K, predicted) - project(inputs.K, true_joints)).norm(dim=-1) / box_height[:, None]).mean()
    phenotype = (outputs["phenotype"] - targets.params.phenotype).abs().mean()
    orientation = (outputs["global_rotation"] - targets.params.global_rotation).square().sum((-1, -2)).mean()
    return {
        "joints": config.weight_joints * joints_m,
        "depth": config.weight_depth * depth,
        "offset": config.weight_offset * offset,
        "reprojection": config.weight_reprojection * reprojection,
        "phenotype": config.weight_phenotype * phenotype,
        "orientation": config.weight_orientation * orientation,
        "balance": config.weight_balance * outputs["balance_loss"],
    }


@torch.no_grad()
def validate(model, body: BodyModel, batch) -> dict[str, float]:
    """Median relative root-depth error (all, children), adult height MAE (m) and joint errors on a fixed batch."""
    from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES
    from metrichmsr.metrics import mpjpe, pa_mpjpe

    inputs, targets = batch
    model.eval()
    outputs = model(inputs)
    model.train()
    predicted = body.joints(outputs["phenotype"], outputs["bone_rotvec"], outputs["global_rotation"], outputs["translation"])
    depth_err = (outputs["translation"][:, 2] / targets.params.translation[:, 2] - 1).abs()
    height_pred = body.standing_heights(outputs["phenotype"])
    height_true = body.standing_heights(targets.params.phenotype)
    adult = targets.params.phenotype[:, PHENOTYPE_NAMES.index("age")] >= ADULT_AGE
    return {
        "val_depth_median": float(depth_err.median()),
        "val_child_depth_median": float(depth_err[~adult].median()) if (~adult).any() else float("nan"),
        "val_adult_height_mae_m": float((height_pred - height_true)[adult].abs().mean()),
        "val_mpjpe_m": float(mpjpe(predicted, targets.joints).mean()),
        "val_pa_mpjpe_m": float(pa_mpjpe(predicted.double(), targets.joints.double()).mean()),
    }


def _learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def plot_curves(log_path: Path, png_path: Path) -> None:
    """Training loss and validation metrics against step, from the CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    steps = [int(r["step"]) for r in rows]
    left.plot(steps, [float(r["loss"]) for r in rows], label="training loss")
    left.set_yscale("log")
    left.set_xlabel("step")
    left.legend()
    validated = [r for r in rows if r.get("val_depth_median")]
    for key, label, scale in (
        ("val_depth_median", "median depth error (%)", 100),
        ("val_adult_height_mae_m", "adult height MAE (cm)", 100),
        ("val_pa_mpjpe_m", "PA-MPJPE (cm)", 100),
    ):
        right.plot([int(r["step"]) for r in validated], [float(r[key]) * scale for r in validated], marker=".", label=label)
    right.set_xlabel("step")
    right.set_title("validation (synthetic, fixed batch)")
    right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png_path)
    plt.close(figure)


def train(
    config: TrainConfig,
    out_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    max_minutes: float | None = None,
) -> Path:
    """Run (or continue) training; returns the exported network's path.

    ``max_minutes``: stop early after this much wall-clock time (checkpoint and export as at the end).
    """
    from tqdm import tqdm

    from metrichmsr.models.humanmoe import HumanMoE, HumanMoEConfig
    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig
    from metrichmsr.train.data import ParallelPeople, SyntheticPeople
    from metrichmsr.train.noise import NoiseModel

    if not 0 <= config.seed < VALIDATION_SEED < HELD_OUT_SEED_START:
        raise ValueError(f"seed must be in [0, {VALIDATION_SEED}), below the validation and held-out seeds")
    # What the recipe names must be there before anything is written (the renders are checked
    # where they are read, below; the run folder is made only after that).
    if config.init_weights and not Path(config.init_weights).is_file():
        raise InputError(f"init_weights {config.init_weights}: no such file (train that network first)")
    torch.manual_seed(config.seed)
    body = BodyModel().to(device)
    # The sampler draws bodies with numpy on the CPU; the losses run wherever the model does.
    data_body = body if torch.device(device).type == "cpu" else BodyModel()
    noise = NoiseModel.load()
    model_config = HumanMoEConfig.from_dict(config.model)
    model = HumanMoE(model_config).to(device)
    if config.init_weights:
        start = HumanMoE.load(config.init_weights)
        # Which world landmarks the network reads is the recipe's to change; its layers must match.
        if replace(start.config, world_landmarks=model.config.world_landmarks) != model.config:
            raise InputError(f"init_weights {config.init_weights}: its architecture differs from the recipe's [model]")
        model.load_state_dict(start.state_dict())
        model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    silhouette_grid = model_config.silhouette_grid
    step = 0
    checkpoint = out_dir / RUN_FILES[0]
    log_path = out_dir / RUN_FILES[1]
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
    else:
        if model.backbone is not None and not config.init_weights:
            model.backbone.load_pretrained(config.backbone_weights or None)
        if log_path.exists():
            log_path.unlink()  # a fresh run starts a fresh log
    # A resumed run draws from a stream seeded by the step it resumes at: reproducible, and
    # never the batches it already saw.
    if config.sampler_workers:
        sampler = ParallelPeople(
            config.sampler_workers, config.batch_size, seed=config.seed + step, silhouette_grid=silhouette_grid
        )
    else:
        scene = SceneConfig(pose_families=tuple(config.pose_families)) if config.pose_families else SceneConfig()
        sampler = SyntheticPeople(data_body, noise, scene, seed=config.seed + step, silhouette_grid=silhouette_grid)
    rendered_count = round(config.rendered_share * config.batch_size)
    rendered = None
    if rendered_count:  # BlazePose runs over the renders now, once (cached): a wrong folder fails here
        from metrichmsr.train.rendered import RenderedPeople

        crops = model.backbone is not None  # crops, and validation people set aside from the renders
        rendered = RenderedPeople(
            [Path(d) for d in config.rendered_data],
            silhouette_grid,
            seed=config.seed + step,
            crop_size=model.config.backbone_image_size if crops else 0,
            holdout=config.validation_size if crops else 0,
            progress=progress,
        )
    if model.backbone is not None:
        validation = rendered.validation()
    else:
        validation = SyntheticPeople(data_body, noise, seed=VALIDATION_SEED, silhouette_grid=silhouette_grid).sample(
            config.validation_size
        )
    validation = (validation[0].to(device), validation[1].to(device))
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_manifest(out_dir, RUN_FILES)

    started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc="train", unit="step", disable=not progress)
    stop_at = started + 60 * max_minutes if max_minutes else math.inf
    last_step = config.steps
    while step < last_step:
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(step, config)
        mixing = rendered_count and step >= config.rendered_from_step
        inputs, targets = _batch(sampler, rendered, config.batch_size, rendered_count if mixing else 0)
        inputs, targets = inputs.to(device), targets.to(device)
        terms = losses(model(inputs), inputs, targets, body, config)
        loss = sum(terms.values())
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step += 1
        bar.update(1)
        row = {
            "step": step,
            "seconds": round(time.perf_counter() - started, 1),
            "loss": loss.item(),
            **{k: round(v.item(), 5) for k, v in terms.items()},
        }
        if time.perf_counter() > stop_at:
            last_step = step  # out of time: this step is the last (validated, checkpointed, exported)
        if step % config.eval_every == 0 or step == last_step:
            row.update(validate(model, body, validation))
            bar.set_postfix(depth=f"{row['val_depth_median']:.3f}", height=f"{row['val_adult_height_mae_m']:.3f}")
        if step % 10 == 0 or "val_depth_median" in row:
            _append(log_path, row)
        if step % config.checkpoint_every == 0 or step == last_step:
            torch.save(
                {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step, "config": asdict(config)},
                checkpoint,
            )
            plot_curves(log_path, out_dir / RUN_FILES[2])
    bar.close()
    exported = out_dir / RUN_FILES[3]
    model.save(exported)
    return exported


def _batch(sampler, rendered, size: int, rendered_count: int):
    """``size`` people: ``rendered_count`` of them from the renders, the rest simulated."""
    if not rendered_count:
        return sampler.sample(size)
    if rendered_count == size:
        return rendered.sample(size)
    from metrichmsr.models.tokens import HumanInputs
    from metrichmsr.train.data import PeopleTargets

    (sim_inputs, sim_targets), (real_inputs, real_targets) = (
        sampler.sample(size - rendered_count),
        rendered.sample(rendered_count),
    )
    return HumanInputs.cat([sim_inputs, real_inputs]), PeopleTargets.cat([sim_targets, real_targets])


_LOG_FIELDS = (
    "step",
    "seconds",
    "loss",
    "joints",
    "depth",
    "offset",
    "reprojection",
    "phenotype",
    "orientation",
    "balance",
    "val_depth_median",
    "val_child_depth_median",
    "val_adult_height_mae_m",
    "val_mpjpe_m",
    "val_pa_mpjpe_m",
)


def _append(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
