"""Learned models: HumanMoE, the camera-ray mixture-of-experts body regressor."""

from metrichmsr.models.humanmoe import (
    TASK_QUERIES,
    TOKEN_TYPES,
    HumanInputs,
    HumanMoE,
    HumanMoEConfig,
    inputs_from_blazepose,
    load_balancing_loss,
    router_statistics,
    to_fit_params,
)

__all__ = [
    "TASK_QUERIES",
    "TOKEN_TYPES",
    "HumanInputs",
    "HumanMoE",
    "HumanMoEConfig",
    "inputs_from_blazepose",
    "load_balancing_loss",
    "router_statistics",
    "to_fit_params",
]
