"""The arithmetic behind the spatially varying conditioning layers (`inside_core.layers`, `layers_nd`).

- `_SeparableModulation` (INSIDE) and `_GuidingModulation` (Guide Me): custom autograd Functions that work
  block by block, so the full-size attention or scale map exists one block at a time and only x is kept for
  the backward pass;
- `on_one_thread`: small differentiable math (a hypernetwork, INSIDE's 1-D Gaussians) run on one thread.

Threads (README, Speed): on the CPU the blocks are spread over torch's thread count with `threads.spread`,
one block per thread at a time, instead of splitting every op of every block between the threads; and the
small math runs on one thread. Both cut the OpenMP parallel regions per step (each ends in a barrier that, on
busy cores, waits for a thread without a core): forward + backward at (32, 64, 50, 50), 2 threads, INSIDE
102 regions before, now 0; Guide Me 65, now 0; FiLM 18, now 6 (12 were its hypernetwork's).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from inside_core.threads import one_thread, spread

BLOCK_ELEMENTS = 1 << 19  # elements per block (2 MiB of float32), each block on one thread: README "Speed"


def on_one_thread(fn: Callable[..., tuple[Tensor, ...]], *inputs: Tensor) -> tuple[Tensor, ...]:
    """`fn(*inputs)`, a tuple of tensors computed from small tensors, with its forward and backward on one
    thread: no op inside opens an OpenMP parallel region (`threads.one_thread` says why that pays). Values
    and gradients are autograd's own for `fn`; no double backward through it."""
    if torch.compiler.is_compiling() or not (torch.is_grad_enabled() and any(t.requires_grad for t in inputs)):
        with one_thread():
            return tuple(fn(*inputs))
    return _OnOneThread.apply(fn, *inputs)


class _OnOneThread(torch.autograd.Function):
    """`on_one_thread` under autograd: the forward records fn's own (small) graph, the backward runs it."""

    @staticmethod
    def forward(ctx, fn, *inputs: Tensor):
        ctx.set_materialize_grads(False)
        with one_thread(), torch.enable_grad():
            ctx.leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
            ctx.outputs = tuple(fn(*ctx.leaves))
        return tuple(o.detach() for o in ctx.outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads: Tensor | None):
        used = [(o, g) for o, g in zip(ctx.outputs, grads, strict=True) if g is not None and o.requires_grad]
        wanted = [leaf for leaf in ctx.leaves if leaf.requires_grad]
        found = iter([None] * len(wanted))
        if used and wanted:
            with one_thread():  # retain_graph: the caller may keep the outer graph to run it again
                found = iter(torch.autograd.grad([o for o, _ in used], wanted, [g for _, g in used],
                                                 retain_graph=True, allow_unused=True))
        return None, *(next(found) if leaf.requires_grad else None for leaf in ctx.leaves)


# --------------------------------------------------------------------------------------------
# Blocks


def _broadcast(t: Tensor, spatial_dims: int) -> Tensor:
    """(B, C) -> (B, C, 1, ..., 1) with `spatial_dims` trailing ones."""
    return t.reshape(*t.shape, *([1] * spatial_dims))


def outer_product(factors: list[Tensor] | tuple[Tensor, ...], out: Tensor | None = None) -> Tensor:
    """prod_k f_k[..., s_k] over factors (B, C, S_k): the (B, C, S_1, ..., S_N) tensor they describe
    (written into `out` when given; with one factor, that factor)."""
    result = factors[0]
    for k, factor in enumerate(factors[1:], start=2):
        factor = factor.reshape(*factor.shape[:2], *([1] * (result.dim() - 2)), factor.shape[-1])
        result = torch.mul(result.unsqueeze(-1), factor, **({"out": out} if k == len(factors) and out is not None
                                                             else {}))
    return result


def _blocks(shape: torch.Size, device: torch.device | None = None) -> tuple[list[tuple[slice, slice]], int]:
    """(batch, channel) slices cutting a contiguous (B, C, *S) tensor into contiguous blocks of about
    BLOCK_ELEMENTS (whole samples while they are smaller, else channel ranges of one sample), and the
    largest block's size.

    Why blocks: a spatially varying layer's full-size temporaries (the attention or scale map, g * x) then
    exist one block at a time, in cache, and the only full-size tensors made are y and the input gradient.
    Each full-size pass saved is one pass over memory and, for a fresh tensor, its page faults (on the
    project's VM a new 20 MB tensor cost ~14 ms in page faults, more than the arithmetic). Much smaller
    blocks lose to the per-op overhead. On a GPU (`device` not the CPU) one block: there each block would be
    a kernel launch more, and nothing was measured."""
    b, c = shape[0], shape[1]
    plane = math.prod(shape[2:])
    limit = BLOCK_ELEMENTS if device is None or device.type == "cpu" else b * c * plane
    if c * plane <= limit:
        k = max(1, limit // (c * plane))
        return [(slice(i, i + k), slice(None)) for i in range(0, b, k)], min(k, b) * c * plane
    k = max(1, limit // plane)
    return [(slice(i, i + 1), slice(j, j + k)) for i in range(b) for j in range(0, c, k)], min(k, c) * plane


def _in(scratch: Tensor, like: Tensor) -> Tensor:
    """The first elements of the scratch buffer, viewed with `like`'s shape."""
    return scratch[: like.numel()].view(like.shape)


def _axis_sums(g: Tensor, factors: list[Tensor]) -> list[Tensor]:
    """For g (M, S_1, ..., S_N) and factors f_k (M, S_k): sums[k][m, i] = sum over all axes but k of
    g[m, ...] * prod_{j != k} f_j. Two batched products whatever N: one contracts the last axis (the rest
    recurses on that smaller tensor), one contracts all axes but the last against their outer product.
    Both are (1, n) @ (n, m) products, the first against g's transposed view: BLAS's vector-times-matrix
    was ~4x faster here than the matrix-times-vector (M, P, S_N) @ (M, S_N, 1)."""
    if len(factors) == 1:
        return [g]
    m, last = g.shape[0], g.shape[-1]
    flat = g.reshape(m, -1, last)
    reduced = torch.bmm(factors[-1].reshape(m, 1, last), flat.transpose(1, 2)).view(g.shape[:-1])
    others = outer_product([f.unsqueeze(0) for f in factors[:-1]])[0].reshape(m, 1, -1)
    return [*_axis_sums(reduced, factors[:-1]), torch.bmm(others, flat).view(m, last)]


# --------------------------------------------------------------------------------------------
# The modulations


class _SeparableModulation(torch.autograd.Function):
    """y = scale * (prod_k f_k) * x + shift per channel; x (B, C, S_1, ..., S_N) contiguous, factors
    f_k (B, C, S_k), scale and shift (B, C). INSIDE's modulation in any number of spatial axes.

    Only x and the small factors are kept for backward (no full-size tensor besides x). Forward and
    backward run block by block (`_blocks`, spread over the threads): the weight scale * prod_k f_k is
    rebuilt per block, and the backward reads g and x once and writes the input gradient once, reducing
    g * x against the factors with two batched products per block. The weight and y are computed in the
    order of the plain formula, so outputs are bit-identical to it.
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, shift: Tensor, *factors: Tensor):
        blocks, largest = _blocks(x.shape, x.device)
        y = torch.empty_like(x)
        with one_thread():
            first, shift = factors[0] * scale.unsqueeze(-1), _broadcast(shift, len(factors))
        if torch.compiler.is_exporting():  # ONNX (inside_core.onnx_decoder): the formula in one piece, no threads
            return torch.addcmul(shift, x, outer_product([first, *factors[1:]]))

        def make_work():
            scratch = x.new_empty(largest)

            def work(block):
                xb = x[block]
                weight = outer_product([first[block], *(f[block] for f in factors[1:])], out=_in(scratch, xb))
                torch.addcmul(shift[block], xb, weight, out=y[block])
            return work

        spread(make_work, blocks)
        ctx.save_for_backward(x, scale, *factors)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, scale, *factors = ctx.saved_tensors
        need_x, need_shift = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        need_factors = ctx.needs_input_grad[1] or any(ctx.needs_input_grad[3:])
        grad_y = grad_y.contiguous()  # the gradient may arrive channels_last
        blocks, largest = _blocks(x.shape, x.device)
        with one_thread():
            first = factors[0] * scale.unsqueeze(-1)
        grad_x = torch.empty_like(x) if need_x else None
        grad_shift = x.new_empty(x.shape[:2]) if need_shift else None
        sums = [x.new_empty(*x.shape[:2], n) for n in x.shape[2:]]

        def make_work():
            scratch = x.new_empty(largest)

            def work(block):
                gb = grad_y[block]
                if need_x:
                    weight = outer_product([first[block], *(f[block] for f in factors[1:])], out=_in(scratch, gb))
                    torch.mul(gb, weight, out=grad_x[block])
                if need_shift:
                    grad_shift[block] = gb.flatten(2).sum(-1)
                if need_factors:
                    gx = torch.mul(gb, x[block], out=_in(scratch, gb))
                    m = gx.shape[0] * gx.shape[1]
                    parts = _axis_sums(gx.view(m, *gx.shape[2:]), [f[block].reshape(m, -1) for f in factors])
                    for total, part in zip(sums, parts, strict=True):
                        total[block] = part.view(*gx.shape[:2], -1)
            return work

        spread(make_work, blocks)
        grad_scale, grad_factors = None, [None] * len(factors)
        if need_factors:
            with one_thread():
                grad_factors = [s * scale.unsqueeze(-1) for s in sums]
                grad_scale = (sums[0] * factors[0]).sum(-1)
        return grad_x, grad_scale, grad_shift, *grad_factors


class _GuidingModulation(torch.autograd.Function):
    """y = (spatial_s + gamma^s_c) * x + gamma^b_c; x (B, C, S_1, ..., S_N) contiguous, spatial
    (B, S_1, ..., S_N) shared by the channels (Guide Me's 1 + sum_k alpha^k), gamma^* (B, C).

    Like `_SeparableModulation`: only x and the small tensors kept for backward, the full-size scale
    rebuilt per block, one read of g and x and one write of the input gradient in the backward; g * x is
    reduced per block over the pixels (gamma^s) and over the channels (a batched product with ones: ~1.8x
    faster than .sum(1) here) for the spatial map. Outputs bit-identical to the plain formula.
    """

    @staticmethod
    def forward(ctx, x: Tensor, spatial: Tensor, gamma_scale: Tensor, gamma_shift: Tensor):
        n = x.dim() - 2
        blocks, largest = _blocks(x.shape, x.device)
        y = torch.empty_like(x)
        spatial_, gamma_scale_, shift = spatial.unsqueeze(1), _broadcast(gamma_scale, n), _broadcast(gamma_shift, n)

        def make_work():
            scratch = x.new_empty(largest)

            def work(block):
                xb = x[block]
                scale = torch.add(spatial_[block[0]], gamma_scale_[block], out=_in(scratch, xb))
                torch.addcmul(shift[block], xb, scale, out=y[block])
            return work

        spread(make_work, blocks)
        ctx.save_for_backward(x, spatial, gamma_scale)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, spatial, gamma_scale = ctx.saved_tensors
        need_x, need_spatial, need_gamma, need_shift = ctx.needs_input_grad
        grad_y = grad_y.contiguous()  # the gradient may arrive channels_last
        blocks, largest = _blocks(x.shape, x.device)
        spatial_, gamma_scale_ = spatial.unsqueeze(1), _broadcast(gamma_scale, x.dim() - 2)
        grad_x = torch.empty_like(x) if need_x else None
        grad_shift = x.new_empty(x.shape[:2]) if need_shift else None
        grad_gamma = x.new_empty(x.shape[:2]) if need_gamma else None
        with one_thread():
            grad_spatial = torch.zeros_like(spatial) if need_spatial else None
        adding = threading.Lock()  # blocks that are channel ranges of one sample add to the same map

        def make_work():
            scratch = x.new_empty(largest)

            def work(block):
                gb = grad_y[block]
                if need_x:
                    scale = torch.add(spatial_[block[0]], gamma_scale_[block], out=_in(scratch, gb))
                    torch.mul(gb, scale, out=grad_x[block])
                if need_shift:
                    grad_shift[block] = gb.flatten(2).sum(-1)
                if need_gamma or need_spatial:
                    gx = torch.mul(gb, x[block], out=_in(scratch, gb)).flatten(2)
                    if need_gamma:
                        grad_gamma[block] = gx.sum(-1)
                    if need_spatial:
                        ones = gx.new_ones(gx.shape[0], 1, gx.shape[1])
                        part = torch.bmm(ones, gx).view(grad_spatial[block[0]].shape)
                        with adding:
                            grad_spatial[block[0]] += part
            return work

        spread(make_work, blocks)
        return grad_x, grad_spatial, grad_gamma, grad_shift
