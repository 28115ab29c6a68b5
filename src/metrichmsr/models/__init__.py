"""Learned models: HumanMoE, the camera-ray mixture-of-experts body regressor."""

from metrichmsr.models.humanmoe import (
    FACE_JOINTS,
    TASK_QUERIES,
    TOKEN_TYPES,
    HumanMoE,
    HumanMoEConfig,
    router_statistics,
    to_body_params,
)
from metrichmsr.models.moe import load_balancing_loss
from metrichmsr.models.tokens import HumanInputs, inputs_from_blazepose

__all__ = [
    "FACE_JOINTS",
    "TASK_QUERIES",
    "TOKEN_TYPES",
    "HumanInputs",
    "HumanMoE",
    "HumanMoEConfig",
    "inputs_from_blazepose",
    "load_balancing_loss",
    "router_statistics",
    "to_body_params",
]
