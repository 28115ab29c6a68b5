"""The mixture-of-experts layers (``models.moe``): capacity, routing priority, balance loss."""

import itertools

import torch

from metrichmsr.models.moe import Block, MoEFeedForward, load_balancing_loss


def test_capacity_overflow_passes_the_residual():
    torch.manual_seed(0)
    moe = MoEFeedForward(dim=32, num_experts=4, top_k=2, expert_hidden=16, capacity_factor=0.01)
    x = torch.randn(3, 20, 32)
    out, route, _ = moe(x)
    assert moe.router.capacity(20) == 1
    for b, e in itertools.product(range(3), range(4)):  # each expert takes at most its capacity per person
        assert ((route.indices[b] == e) & route.kept[b]).sum() <= 1
    dropped = ~route.kept.any(dim=-1)  # (B, T) tokens no expert took
    assert (route.kept.sum(dim=(1, 2)) <= 4).all() and dropped.float().mean() >= 0.75
    assert (out[dropped] == 0).all() and (out[~dropped].abs().sum(-1) > 0).all()
    # In a block, a token no expert took leaves the feed-forward as it entered (residual only).
    block = Block(dim=32, heads=4, ffn="moe", num_experts=4, top_k=2, expert_hidden=16, capacity_factor=0.01)
    y, route, _ = block(x)
    h = x + block.attn(block.norm1(x))
    dropped = ~route.kept.any(dim=-1)
    torch.testing.assert_close(y[dropped], h[dropped])
    assert not torch.allclose(y[~dropped], h[~dropped])


def test_capacity_prefers_first_choices():
    """With room for a quarter of the choices, first choices are served before any second choice."""
    torch.manual_seed(1)
    moe = MoEFeedForward(dim=16, num_experts=4, top_k=2, expert_hidden=8, capacity_factor=0.5)
    _, route, _ = moe(torch.randn(2, 40, 16))
    first, second = route.kept[..., 0], route.kept[..., 1]
    assert first.float().mean() > second.float().mean()


def test_balance_loss_minimum_for_uniform_router_and_larger_for_collapsed():
    torch.manual_seed(0)
    moe = MoEFeedForward(dim=16, num_experts=4, top_k=2, expert_hidden=8, capacity_factor=1.25)
    x = torch.randn(2, 30, 16)
    torch.nn.init.zeros_(moe.router.gate.weight)
    _, _, uniform = moe(x)
    torch.testing.assert_close(uniform, torch.tensor(1.0))
    with torch.no_grad():
        moe.router.gate.weight[0] = 10.0 * x.mean(dim=(0, 1)) / x.mean(dim=(0, 1)).norm() ** 2
        moe.router.gate.weight[1:] = 0.0
    _, route, collapsed = moe(torch.ones_like(x) * x.mean(dim=(0, 1)))
    assert (route.indices[..., 0] == 0).all()
    assert collapsed > 1.5
    # Balanced choices with confident (one-hot) probabilities also sit at the minimum.
    probs = torch.eye(4).repeat(8, 1)
    torch.testing.assert_close(load_balancing_loss(probs, probs.argmax(-1, keepdim=True)), torch.tensor(1.0))
