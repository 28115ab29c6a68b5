"""Training data for HumanMoE.

- ``train.noise``: BlazePose's errors measured on synthetic renders (``NoiseModel``; shipped as
  ``blazepose_noise.json``, remeasured with ``python -m metrichmsr.bench.blazepose_noise --images 150``);
- ``train.data``: an online sampler of synthetic people seen through those errors (``SyntheticPeople``).
"""
