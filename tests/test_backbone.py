"""models.backbone: a user's pretrained ViT read as patch tokens of the person crop (random weights here)."""

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from metrichmsr.models.backbone import PatchBackbone
from metrichmsr.models.humanmoe import HumanMoE, HumanMoEConfig
from metrichmsr.models.tokens import HumanInputs, crop_from_image, silhouette_window

transformers = pytest.importorskip("transformers")

SMALL = dict(dim=32, depth=1, heads=2, expert_hidden=32)


@pytest.fixture
def vit_folder(tmp_path):
    """A tiny random ViT saved as a user's Hugging Face model folder."""
    config = transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    return tmp_path / "vit"


def _inputs(n: int, crop_size: int | None) -> HumanInputs:
    generator = torch.Generator().manual_seed(1)
    keypoints = torch.cat((100 + 50 * torch.rand(n, 23, 2, generator=generator), torch.ones(n, 23, 1)), -1)
    K = torch.tensor([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]]).expand(n, 3, 3)
    crop = None if crop_size is None else torch.rand(n, 3, crop_size, crop_size, generator=generator)
    return HumanInputs(
        keypoints, 0.1 * torch.randn(n, 23, 3, generator=generator), torch.tensor([[90.0, 90, 160, 160]] * n), K, crop=crop
    )


def test_hf_backbone_adds_image_tokens_and_rebuilds_without_its_folder(vit_folder, tmp_path):
    model = HumanMoE(HumanMoEConfig(**SMALL, backbone=f"hf:{vit_folder}", backbone_image_size=48)).eval()
    assert model.backbone.num_patches == 36  # 48 px crops, 8 px patches: the ViT's position grid is interpolated
    assert model.num_tokens == 23 + 16 + 36 + 3
    assert model.config.backbone_hf_config["model_type"] == "vit"
    inputs = _inputs(2, 48)
    with torch.no_grad():
        out = model(inputs)
    assert out["translation"].shape == (2, 3) and torch.isfinite(out["translation"]).all()
    with pytest.raises(ValueError, match=r"reads image crops: HumanInputs.crop must be \(B, 3, 48, 48\)"):
        model(_inputs(2, None))
    model.save(tmp_path / "net.pt")
    for path in vit_folder.iterdir():
        path.unlink()
    vit_folder.rmdir()
    again = HumanMoE.load(tmp_path / "net.pt")
    with torch.no_grad():
        assert torch.allclose(again(inputs)["translation"], out["translation"])


def test_pretrained_weights_are_the_users(vit_folder):
    backbone = PatchBackbone(f"hf:{vit_folder}", 32)
    reference = transformers.ViTModel.from_pretrained(vit_folder)
    crops = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference(pixel_values=(crops - mean) / std).last_hidden_state[:, 1:]  # the class token dropped
        assert not torch.allclose(backbone(crops), expected)  # random until loaded
        backbone.load_pretrained()
        assert torch.allclose(backbone(crops), expected, atol=1e-5)


def test_bad_backbones_are_refused(vit_folder, tmp_path):
    with pytest.raises(ValueError, match="'hf:<folder>' or 'timm:<model name>'"):
        PatchBackbone("vit_small", 224)
    with pytest.raises(FileNotFoundError, match="no Hugging Face model there"):
        PatchBackbone(f"hf:{tmp_path / 'nothing'}", 224)
    with pytest.raises(ValueError, match="multiple of the backbone's patch size"):
        PatchBackbone(f"hf:{vit_folder}", 30)


class _FakeTimmViT(nn.Module):
    """timm's ViT interface as HumanMoE uses it: forward_features gives prefix then patch tokens."""

    def __init__(self, img_size: int):
        super().__init__()
        self.num_prefix_tokens, self.num_features = 1, 24
        self.patch_embed = types.SimpleNamespace(patch_size=(16, 16))
        self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
        self.proj = nn.Conv2d(3, 24, 16, 16)
        self.cls = nn.Parameter(torch.full((1, 1, 24), 7.0))

    def forward_features(self, x):
        patches = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat((self.cls.expand(len(x), -1, -1), patches), 1)


def test_timm_backbone_drops_prefix_tokens_and_loads_a_checkpoint(monkeypatch, tmp_path):
    loaded = []
    fake = types.SimpleNamespace(
        create_model=lambda name, pretrained, num_classes, img_size: _FakeTimmViT(img_size),
        models=types.SimpleNamespace(load_checkpoint=lambda model, path, strict: loaded.append((path, strict))),
    )
    monkeypatch.setitem(sys.modules, "timm", fake)
    backbone = PatchBackbone("timm:vit_small_patch16_224", 64)
    tokens = backbone(torch.rand(2, 3, 64, 64))
    assert tokens.shape == (2, 16, 24) and not (tokens == 7.0).all(-1).any()  # the class token is gone
    assert torch.allclose(backbone.mean, torch.full((1, 3, 1, 1), 0.5))
    with pytest.raises(ValueError, match="needs a checkpoint file"):
        backbone.load_pretrained()
    weights = tmp_path / "vit.pth"
    weights.write_bytes(b"x")
    backbone.load_pretrained(str(weights))
    assert loaded == [(str(weights), False)]


def test_missing_timm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ImportError, match="timm is not importable here"):
        PatchBackbone("timm:vit_small_patch16_224", 224)


def test_crops_cover_the_silhouette_window():
    height, width = 90, 120
    x = np.tile(np.arange(width, dtype=np.uint8)[None, :, None], (height, 1, 3))  # each pixel's value is its column
    box = np.array([[40.0, 30.0, 60.0, 60.0]])
    crop = crop_from_image(x, box, 14)
    x0, _, x1, _ = silhouette_window(torch.as_tensor(box))[0].tolist()
    columns = x0 + (np.arange(14) + 0.5) / 14 * (x1 - x0)  # the cells' centres, image pixels
    assert crop.shape == (1, 3, 14, 14)
    assert np.allclose(255 * crop[0, 0, 7].numpy(), columns, atol=1e-3)
    corner = crop_from_image(x, np.array([[0.0, 0.0, 10.0, 10.0]]), 8)
    assert corner[0, :, 0, 0].abs().max() == 0  # outside the image: zeros
    assert crop_from_image(x, np.zeros((0, 4)), 8).shape == (0, 3, 8, 8)
