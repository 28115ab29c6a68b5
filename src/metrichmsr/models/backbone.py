"""Patch tokens of a person crop from a pretrained ViT the user brings (an optional HumanMoE input).

The shipped HumanMoE reads no pixels: BlazePose's keypoints and mask, and the camera rays. A
vision transformer sees what those leave out (clothes, hair, a child's face), at the cost of a
crop and a ViT forward pass per person. Nothing is downloaded: ``HumanMoEConfig.backbone``
names weights the user has.

- ``"hf:<folder>"``: a Hugging Face vision transformer saved with ``save_pretrained`` (ViT,
  DINOv2 and other ``AutoModel`` image encoders whose ``last_hidden_state`` ends with the patch
  tokens). Its config is copied into the HumanMoE config, so a trained network rebuilds
  without the folder.
- ``"timm:<model name>"``: ``timm.create_model(name, num_classes=0, img_size=S)``, pretrained
  weights from a checkpoint file. timm imports torchvision, which does not install beside this
  machine's CPU build of torch, so this path is tested against timm's API, not timm itself.

Crops are ``(B, 3, S, S)`` RGB in [0, 1] over ``models.humanmoe.silhouette_window`` (a square
1.4 times the person box); the backbone normalises them with its own mean and std.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
from torch import nn

#: Used when the weights say nothing of their normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PatchBackbone(nn.Module):
    """(B, 3, S, S) crops in [0, 1] -> (B, N, width) patch tokens (class and register tokens dropped).

    Args:
        spec: ``"hf:<folder>"`` or ``"timm:<model name>"`` (module docstring).
        image_size: S, the crop side in pixels (a multiple of the patch size).
        hf_config: for ``hf:``, the model's config as a dict (``PretrainedConfig.to_dict()``);
            None reads it from the folder. Unused for ``timm:``.

    The weights start random; ``load_pretrained`` loads the user's.
    """

    def __init__(self, spec: str, image_size: int, hf_config: dict | None = None):
        super().__init__()
        self.kind, _, self.source = spec.partition(":")
        if self.kind not in ("hf", "timm") or not self.source:
            raise ValueError(f"backbone must be 'hf:<folder>' or 'timm:<model name>', got {spec!r}")
        self.image_size = image_size
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if self.kind == "hf":
            self.model, self.hf_config = _hf_model(self.source, hf_config)
            self.width = self.model.config.hidden_size
            patch = self.model.config.patch_size
            mean, std = _hf_normalisation(Path(self.source), mean, std)
            self._interpolate = "interpolate_pos_encoding" in inspect.signature(self.model.forward).parameters
        else:
            timm = _import_timm()
            self.model = timm.create_model(self.source, pretrained=False, num_classes=0, img_size=image_size)
            self.hf_config = None
            self.width = self.model.num_features
            patch = self.model.patch_embed.patch_size[0]
            config = getattr(self.model, "pretrained_cfg", None) or {}
            mean, std = config.get("mean", mean), config.get("std", std)
        if image_size % patch:
            raise ValueError(f"backbone_image_size ({image_size}) must be a multiple of the backbone's patch size ({patch})")
        self.num_patches = (image_size // patch) ** 2
        # Persistent: a trained network keeps the normalisation its backbone was trained with.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = (crops - self.mean) / self.std
        if self.kind == "hf":
            kwargs = {"interpolate_pos_encoding": True} if self._interpolate else {}
            tokens = self.model(pixel_values=x, **kwargs).last_hidden_state
        else:
            tokens = self.model.forward_features(x)
        return tokens[:, -self.num_patches :]

    def load_pretrained(self, weights: str | None = None) -> None:
        """The user's weights: ``hf:`` from ``weights`` or the spec's folder; ``timm:`` from a checkpoint file."""
        if self.kind == "hf":
            from transformers import AutoModel

            folder = Path(weights or self.source)
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(f"backbone weights {folder}: no Hugging Face model there (config.json)")
            pretrained = AutoModel.from_pretrained(folder, local_files_only=True)
            self.model.load_state_dict(pretrained.state_dict())
            return
        if not weights:
            raise ValueError(f"backbone timm:{self.source} needs a checkpoint file (backbone_weights)")
        if not Path(weights).is_file():
            raise FileNotFoundError(f"backbone weights {weights}: no such file")
        _import_timm().models.load_checkpoint(self.model, weights, strict=False)


def _import_timm():
    try:
        import timm
    except ImportError as error:
        raise ImportError(f"backbone timm:...: timm is not importable here ({error}); use an hf: backbone") from None
    return timm


def _hf_model(folder: str, hf_config: dict | None):
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError:
        raise ImportError("backbone hf:...: needs transformers (pip install 'metrichmsr[hf]')") from None
    if hf_config is None:
        if not (Path(folder) / "config.json").is_file():
            raise FileNotFoundError(f"backbone hf:{folder}: no Hugging Face model there (save one with save_pretrained)")
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    else:
        values = dict(hf_config)
        config = AutoConfig.for_model(values.pop("model_type"), **values)
    return AutoModel.from_config(config), config.to_dict()


def _hf_normalisation(folder: Path, mean: tuple, std: tuple) -> tuple:
    """The image mean and std of the folder's preprocessor, else the given ones."""
    preprocessor = folder / "preprocessor_config.json"
    if preprocessor.is_file():
        values = json.loads(preprocessor.read_text())
        return tuple(values.get("image_mean", mean)), tuple(values.get("image_std", std))
    return mean, std
