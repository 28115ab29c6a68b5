"""Mixture-of-experts transformer layers, in three small pieces: a router returning the
routing of every token (:class:`TopKRouter`, :class:`RouterOutput`), the experts
(:class:`MoEFeedForward`) and a separate auxiliary balance loss (:func:`load_balancing_loss`),
as in Mixtral; plus the pre-norm transformer :class:`Block` HumanMoE stacks.

Tokens are (B, T, dim): B sequences (one per person) of T tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FFNKind = Literal["moe", "dense"]


class FeedForward(nn.Module):
    """Two-layer MLP with GELU: (..., in_features) -> (..., out_features, default in_features)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention over (B, T, dim) tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, dim / heads)
        return self.proj(x.transpose(1, 2).reshape(b, t, d))


@dataclass
class RouterOutput:
    """One MoE layer's routing of B sequences of T tokens among E experts.

    logits, probs: (B, T, E) router logits and their softmax.
    indices: (B, T, k) chosen experts, best first; weights: (B, T, k) their gate weights
        (probabilities renormalised over the k chosen).
    kept: (B, T, k) bool, False where the expert was full (the assignment was dropped).
    """

    logits: torch.Tensor
    probs: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor
    kept: torch.Tensor


class TopKRouter(nn.Module):
    """Learned linear router with top-k choice and per-sequence expert capacity.

    Capacity is counted per sequence (one person) rather than over the batch so that a person's
    output never depends on who else is in the batch. When an expert is over capacity, first
    choices go before second choices and, within a choice, larger gate weights first (batch
    prioritised routing, Riquelme et al. 2021), so the least confident assignments are dropped.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int, capacity_factor: float):
        super().__init__()
        self.gate = nn.Linear(dim, num_experts, bias=False)
        self.num_experts = num_experts
        self.top_k = top_k
        self.capacity_factor = capacity_factor

    def capacity(self, num_tokens: int) -> int:
        """Assignments one expert takes from one sequence of ``num_tokens`` tokens (at least 1)."""
        return max(1, math.ceil(self.capacity_factor * num_tokens * self.top_k / self.num_experts))

    def forward(self, x: torch.Tensor) -> RouterOutput:
        b, t, _ = x.shape
        logits = self.gate(x)
        probs = logits.softmax(dim=-1)
        top, indices = probs.topk(self.top_k, dim=-1)
        weights = top / top.sum(dim=-1, keepdim=True)
        # Slot-major flat order, then a priority key: choice index minus gate weight (in (0, 1]),
        # so every first choice ranks before every second choice, heavier gates first.
        flat_expert = indices.transpose(1, 2).reshape(b, self.top_k * t)
        flat_weight = weights.transpose(1, 2).reshape(b, self.top_k * t)
        choice = torch.arange(self.top_k, device=x.device).repeat_interleave(t)
        order = (choice - flat_weight.detach()).argsort(dim=1, stable=True)
        onehot = F.one_hot(flat_expert.gather(1, order), self.num_experts)  # (B, kT, E), priority order
        slot_in_expert = (onehot.cumsum(dim=1) * onehot).sum(-1) - 1
        position = torch.empty_like(slot_in_expert).scatter_(1, order, slot_in_expert)
        kept = (position < self.capacity(t)).reshape(b, self.top_k, t).transpose(1, 2)
        return RouterOutput(logits, probs, indices, weights, kept)


def load_balancing_loss(probs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Switch/GShard auxiliary loss ``E * sum_e f_e * P_e`` (scalar).

    probs (..., E) router probabilities; indices (..., k) chosen experts. ``f_e`` is the share of
    all k-choices that go to expert e (before capacity drops), ``P_e`` the mean probability of e.
    It is 1 whenever the router is uniform or the load is balanced, and grows towards E when
    one expert takes everything; only ``P_e`` carries the gradient (f is a count).
    """
    num_experts = probs.shape[-1]
    if probs.numel() == 0:
        return probs.new_ones(())
    share = F.one_hot(indices, num_experts).flatten(0, -2).float().mean(dim=0)  # (E,)
    mean_prob = probs.flatten(0, -2).mean(dim=0)
    return num_experts * (share * mean_prob).sum()


class MoEFeedForward(nn.Module):
    """Mixture-of-experts feed-forward: (B, T, dim) -> (B, T, dim), its RouterOutput and balance loss.

    Each token's output is the gate-weighted sum of its kept experts' outputs; a token whose
    every assignment overflowed gets exactly zero, so the block passes it through its residual.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int, expert_hidden: int, capacity_factor: float):
        super().__init__()
        self.router = TopKRouter(dim, num_experts, top_k, capacity_factor)
        self.experts = nn.ModuleList(FeedForward(dim, expert_hidden) for _ in range(num_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput, torch.Tensor]:
        route = self.router(x)
        tokens = x.flatten(0, 1)
        expert_of = route.indices.flatten(0, 1)  # (B*T, k)
        weight_of = route.weights.flatten(0, 1)
        kept = route.kept.flatten(0, 1)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token, choice = torch.nonzero((expert_of == e) & kept, as_tuple=True)
            out.index_add_(0, token, expert(tokens[token]) * weight_of[token, choice, None])
        return out.reshape(x.shape), route, load_balancing_loss(route.probs, route.indices)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)) with an MoE or dense FFN.

    ``ffn="dense"``: one feed-forward as wide as all experts together (the ablation's same
    parameter count); the other arguments as :class:`MoEFeedForward`'s.
    """

    def __init__(
        self, dim: int, heads: int, ffn: FFNKind, num_experts: int, top_k: int, expert_hidden: int, capacity_factor: float
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        if ffn == "moe":
            self.ffn: nn.Module = MoEFeedForward(dim, num_experts, top_k, expert_hidden, capacity_factor)
        else:
            self.ffn = FeedForward(dim, expert_hidden * num_experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput | None, torch.Tensor | None]:
        """(B, T, dim) -> tokens, routing and balance loss (both None for a dense FFN)."""
        x = x + self.attn(self.norm1(x))
        if isinstance(self.ffn, MoEFeedForward):
            update, route, balance = self.ffn(self.norm2(x))
            return x + update, route, balance
        return x + self.ffn(self.norm2(x)), None, None
