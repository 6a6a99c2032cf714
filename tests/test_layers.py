"""The conditioning layers against hand-computed values, and their gradients."""

import dataclasses
import math

import pytest
import torch

from inside_core import INSIDE, FiLM, FiLMParams, GuidingBlock, GuidingParams, InsideParams, gaussian_attention
from inside_core import layer_kernels as kernels
from inside_core import layers as layers_module
from inside_core.layer_kernels import _blocks, _SeparableModulation
from inside_core.layers import pixel_centres

# The spatially varying layers run block by block (layer_kernels._blocks). At the tests' small sizes the default
# block holds the whole tensor; these settings of BLOCK_ELEMENTS cut it into several blocks of three
# samples (the last one short) or into single channels of one sample, so every path is checked.
BLOCKINGS = {
    "whole": lambda c, plane: None,
    "three samples": lambda c, plane: 3 * c * plane,
    "one channel": lambda c, plane: 2 * plane - 1,
}


@pytest.fixture(params=list(BLOCKINGS))
def blocking(request, monkeypatch):
    """Call with (channels, pixels per channel) to set the block size of `request.param`."""
    def use(channels: int, plane: int) -> None:
        target = BLOCKINGS[request.param](channels, plane)
        if target is not None:
            monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", target)
    return use


@pytest.mark.parametrize("shape", [(5, 3, 4, 6), (2, 7, 3, 3, 2), (1, 1, 5)])
@pytest.mark.parametrize("block", [1, 4, 30, 10**6])
def test_blocks_cover_the_tensor_once_in_order(shape, block, monkeypatch):
    monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", block)
    t = torch.arange(math.prod(shape)).view(shape)
    blocks, largest = _blocks(t.shape)
    pieces = [t[bs, cs] for bs, cs in blocks]
    assert all(p.is_contiguous() for p in pieces)  # out= writes land in place
    assert torch.equal(torch.cat([p.flatten() for p in pieces]), t.flatten())
    assert largest == max(p.numel() for p in pieces)
    if block < math.prod(shape[1:]) and shape[1] > 1:
        assert len(blocks) > shape[0]  # samples bigger than a block are cut into channel ranges


def test_pixel_centres_follow_grid_sample_convention():
    # n = 4: centres at -0.75, -0.25, 0.25, 0.75; n = 5 has its middle pixel at exactly 0
    assert torch.allclose(pixel_centres(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(pixel_centres(5), torch.tensor([-0.8, -0.4, 0.0, 0.4, 0.8]))
    # the same centres grid_sample uses with align_corners=False: sampling a ramp at them returns it
    ramp = torch.arange(7.0).view(1, 1, 1, 7)
    grid = torch.stack([pixel_centres(7), torch.zeros(7)], dim=-1).view(1, 1, 7, 2)
    sampled = torch.nn.functional.grid_sample(ramp, grid, align_corners=False)
    assert torch.allclose(sampled.flatten(), ramp.flatten())


def test_gaussian_attention_hand_computed_values():
    mu, sigma = torch.tensor([[0.25]]), torch.tensor([[0.5]])
    g = gaussian_attention(mu, sigma, 4)[0, 0]
    expected = [math.exp(-0.5 * ((t - 0.25) / 0.5) ** 2) for t in (-0.75, -0.25, 0.25, 0.75)]
    assert torch.allclose(g, torch.tensor(expected))
    assert g[2] == 1.0  # the peak is exactly 1 at the pixel whose centre is mu: not normalised


def test_gaussian_attention_symmetry_and_odd_sizes():
    g = gaussian_attention(torch.zeros(2, 3), torch.full((2, 3), 0.3), 9)
    assert g.shape == (2, 3, 9)
    assert torch.allclose(g, g.flip(-1))  # mu = 0 is the image centre: symmetric
    assert g[0, 0].argmax() == 4 and g[0, 0, 4] == 1.0


@pytest.mark.parametrize("size", [5, 8, 50])
def test_mu_at_plus_minus_one_peaks_on_edge_pixels(size):
    g = gaussian_attention(torch.tensor([[-1.0, 1.0]]), torch.tensor([[0.1, 0.1]]), size)[0]
    assert g[0].argmax() == 0 and g[1].argmax() == size - 1
    # the edge is half a pixel beyond the edge pixel's centre
    half_pixel = 1.0 / size
    assert torch.isclose(g[0, 0], torch.tensor(math.exp(-0.5 * (half_pixel / 0.1) ** 2)))


def test_gaussian_attention_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gaussian_attention(torch.zeros(2, 3), torch.ones(2, 4), 5)


def test_inside_attention_is_outer_product_of_the_two_gaussians():
    params = InsideParams(
        mu_x=torch.tensor([[0.5]]), mu_y=torch.tensor([[-0.5]]),
        sigma_x=torch.tensor([[0.2]]), sigma_y=torch.tensor([[0.4]]),
        gamma=torch.zeros(1, 1), beta=torch.zeros(1, 1),
    )
    a = params.attention(6, 10)
    assert a.shape == (1, 1, 6, 10)
    t_rows, t_cols = pixel_centres(6), pixel_centres(10)
    i, j = 1, 7
    expected = math.exp(-0.5 * ((t_rows[i] + 0.5) / 0.4) ** 2) * math.exp(-0.5 * ((t_cols[j] - 0.5) / 0.2) ** 2)
    assert torch.isclose(a[0, 0, i, j], torch.tensor(expected))
    # mu_y = -0.5 is the centre of the top half: rows 1 (t = -0.5) holds the peak
    assert a[0, 0].max(dim=1).values.argmax() == 1


def test_inside_modulate_formula_by_hand():
    layer = INSIDE(channels=2, cond_dim=3)
    x = torch.randn(1, 2, 5, 7)
    params = InsideParams(
        mu_x=torch.tensor([[0.1, -0.6]]), mu_y=torch.tensor([[0.3, 0.0]]),
        sigma_x=torch.tensor([[0.2, 0.5]]), sigma_y=torch.tensor([[0.7, 0.25]]),
        gamma=torch.tensor([[0.5, -0.2]]), beta=torch.tensor([[1.0, -3.0]]),
    )
    y = layer.modulate(x, params)
    a = params.attention(5, 7)
    expected = (1 + params.gamma)[..., None, None] * (a * x) + params.beta[..., None, None]
    assert torch.allclose(y, expected, atol=1e-6)


def test_inside_is_close_to_identity_with_wide_gaussians_and_zero_scale_shift():
    layer = INSIDE(channels=3, cond_dim=2)
    x = torch.randn(2, 3, 8, 8)
    zeros = torch.zeros(2, 3)
    params = InsideParams(zeros, zeros, zeros + 100.0, zeros + 100.0, zeros, zeros)
    assert torch.allclose(layer.modulate(x, params), x, atol=1e-3)


def test_film_and_guiding_block_formulas_by_hand():
    x = torch.randn(2, 3, 4, 5)
    film = FiLM(3, 2)
    fp = FiLMParams(gamma=torch.randn(2, 3), beta=torch.randn(2, 3))
    assert torch.allclose(film.modulate(x, fp), (1 + fp.gamma)[..., None, None] * x + fp.beta[..., None, None],
                          atol=1e-6)
    guide = GuidingBlock(3, 2, 4, 5)
    gp = GuidingParams(gamma_scale=torch.randn(2, 3), gamma_shift=torch.randn(2, 3),
                       alpha=torch.randn(2, 4), beta=torch.randn(2, 5))
    by_hand = torch.empty_like(x)
    for b in range(2):
        for c in range(3):
            for h in range(4):
                for w in range(5):
                    scale = 1 + gp.alpha[b, h] + gp.beta[b, w] + gp.gamma_scale[b, c]
                    by_hand[b, c, h, w] = scale * x[b, c, h, w] + gp.gamma_shift[b, c]
    assert torch.allclose(guide.modulate(x, gp), by_hand, atol=1e-5)


@pytest.mark.parametrize("layer_cls", [FiLM, GuidingBlock, INSIDE])
def test_modulate_agrees_with_forward(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(4, 3, 7, 9) if layer_cls is GuidingBlock else layer_cls(4, 3)
    x, z = torch.randn(2, 4, 7, 9), torch.randn(2, 3)
    y, params = layer(x, z)
    assert torch.equal(layer.modulate(x, params), y)
    # parameters given by hand through dataclasses.replace change the output
    first = dataclasses.fields(params)[0].name
    changed = dataclasses.replace(params, **{first: getattr(params, first) + 0.5})
    assert not torch.allclose(layer.modulate(x, changed), y)


def test_inside_params_ranges():
    torch.manual_seed(0)
    layer = INSIDE(8, 4, sigma_max=0.2)
    _, p = layer(torch.randn(3, 8, 6, 6), torch.randn(3, 4) * 50)  # large z saturates the heads
    assert p.mu_x.abs().max() <= 1 and p.mu_y.abs().max() <= 1
    for sigma in (p.sigma_x, p.sigma_y):
        assert (sigma > 0).all() and (sigma <= 0.2).all()
    assert {f.name for f in dataclasses.fields(p)} == {"mu_x", "mu_y", "sigma_x", "sigma_y", "gamma", "beta"}
    assert all(getattr(p, f.name).shape == (3, 8) for f in dataclasses.fields(p))
    assert p.attention(6, 6).shape == (3, 8, 6, 6)


def test_inside_sigma_penalty_pushes_sigma_down():
    torch.manual_seed(0)
    layer = INSIDE(4, 2, sigma_penalty_weight=1.0)
    z = torch.randn(5, 2)
    before = layer.params(z).sigma_x.mean().item()
    optimiser = torch.optim.SGD(layer.parameters(), lr=1.0)
    for _ in range(20):
        optimiser.zero_grad()
        layer.sigma_penalty(layer.params(z)).backward()
        optimiser.step()
    assert layer.params(z).sigma_x.mean().item() < before


def test_custom_backward_matches_autograd_of_plain_formula():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    leaves = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(6)]
    mu_x, mu_y, log_sx, log_sy, gamma, beta = leaves

    def make_params():
        return InsideParams(mu_x, mu_y, log_sx.exp(), log_sy.exp(), gamma, beta)

    layer = INSIDE(3, 2).double()
    assert torch.autograd.gradcheck(lambda x_: layer.modulate(x_, make_params()), (x,))
    weights = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    (layer.modulate(x, make_params()) * weights).sum().backward()
    fast = [x.grad.clone()] + [leaf.grad.clone() for leaf in leaves]
    for t in [x, *leaves]:
        t.grad = None
    p = make_params()
    plain = (1 + p.gamma)[..., None, None] * (p.attention(5, 7) * x) + p.beta[..., None, None]
    (plain * weights).sum().backward()
    slow = [x.grad] + [leaf.grad for leaf in leaves]
    for a, b in zip(fast, slow, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_gradient_descent_on_mu_moves_attention_onto_a_target_spot():
    # target: a bright spot in the bottom-right; only mu is learnable
    size = 16
    target = torch.zeros(1, 1, size, size)
    target[0, 0, 11:14, 11:14] = 1.0
    mu_x = torch.zeros(1, 1, requires_grad=True)
    mu_y = torch.zeros(1, 1, requires_grad=True)
    sigma = torch.full((1, 1), 0.5)
    layer = INSIDE(1, 1)
    optimiser = torch.optim.Adam([mu_x, mu_y], lr=0.05)
    ones = torch.ones(1, 1, size, size)
    for _ in range(100):
        optimiser.zero_grad()
        params = InsideParams(mu_x, mu_y, sigma, sigma, torch.zeros(1, 1), torch.zeros(1, 1))
        loss = -(layer.modulate(ones, params) * target).sum()  # maximise the attention on the spot
        loss.backward()
        optimiser.step()
    spot_centre = (2 * 12 + 1) / size - 1  # pixel 12 in normalised units
    assert abs(mu_x.item() - spot_centre) < 0.15 and abs(mu_y.item() - spot_centre) < 0.15


def test_gradients_reach_mu_and_sigma_through_the_hypernetwork():
    torch.manual_seed(0)
    layer = INSIDE(4, 3)
    y, params = layer(torch.randn(2, 4, 6, 6), torch.randn(2, 3))
    for name in ("mu_x", "mu_y", "sigma_x", "sigma_y"):
        getattr(params, name).retain_grad()
    y.pow(2).sum().backward()
    for name in ("mu_x", "mu_y", "sigma_x", "sigma_y"):
        assert getattr(params, name).grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.hypernetwork.parameters())


@pytest.mark.parametrize("layer", [FiLM(4, 3), GuidingBlock(4, 3, 6, 6), INSIDE(4, 3)])
def test_wrong_shapes_raise_value_error(layer):
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        layer(torch.randn(2, 5, 6, 6), torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"z of shape \(2, 3\)"):
        layer(torch.randn(2, 4, 6, 6), torch.randn(2, 2))


def test_guiding_block_is_tied_to_its_feature_size():
    with pytest.raises(ValueError, match="built for 6x6"):
        GuidingBlock(4, 3, 6, 6)(torch.randn(1, 4, 8, 8), torch.randn(1, 3))


def _plain_guiding(x, gp: GuidingParams):
    """Guide Me as the broadcast formula (what autograd differentiates without the custom Function)."""
    scale = 1 + gp.spatial_map().unsqueeze(1) + gp.gamma_scale[:, :, None, None]
    return torch.addcmul(gp.gamma_shift[:, :, None, None], x, scale)


def test_guiding_block_forward_is_bit_identical_to_the_broadcast_formula(blocking):
    # the shipped Guide Me checkpoints must evaluate to the same masks: same operations, same order
    torch.manual_seed(0)
    blocking(16, 12 * 10)
    guide = GuidingBlock(16, 4, 12, 10)
    x, z = torch.randn(3, 16, 12, 10), torch.randn(3, 4)
    y, gp = guide(x, z)
    assert torch.equal(y, _plain_guiding(x, gp))


def test_guiding_block_custom_backward_gradcheck_float64(blocking):
    torch.manual_seed(0)
    b, c, h, w = 4, 3, 4, 5  # h != w, so alpha and beta cannot be swapped unnoticed
    blocking(c, h * w)
    x = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    leaves = [torch.randn(b, n, dtype=torch.float64, requires_grad=True) for n in (c, c, h, w)]
    guide = GuidingBlock(c, 2, h, w).double()
    assert torch.autograd.gradcheck(lambda *t: guide.modulate(t[0], GuidingParams(*t[1:])), (x, *leaves))


@pytest.mark.parametrize("channels_last", [False, True])
def test_guiding_block_gradients_match_the_plain_formula_float32(channels_last, blocking):
    torch.manual_seed(1)
    b, c, h, w = 4, 8, 9, 11
    blocking(c, h * w)
    x = torch.randn(b, c, h, w, requires_grad=True)
    leaves = [torch.randn(b, n, requires_grad=True) for n in (c, c, h, w)]
    grad = torch.randn(b, c, h, w)
    if channels_last:
        grad = grad.contiguous(memory_format=torch.channels_last)
    guide = GuidingBlock(c, 2, h, w)
    y = guide.modulate(x, GuidingParams(*leaves))
    fast = torch.autograd.grad(y, [x, *leaves], grad)
    plain = torch.autograd.grad(_plain_guiding(x, GuidingParams(*leaves)), [x, *leaves], grad)
    assert torch.equal(y, _plain_guiding(x, GuidingParams(*leaves)))
    for a, b_ in zip(fast, plain, strict=True):
        assert a.shape == b_.shape
        assert torch.allclose(a, b_, rtol=1e-5, atol=1e-4)


def test_inside_custom_backward_gradcheck_all_inputs_float64(blocking):
    # every input of the Function, not only x: the row and column sums are reduced along different axes
    torch.manual_seed(0)
    b, c, h, w = 4, 3, 4, 6
    blocking(c, h * w)
    inputs = [torch.randn(*shape, dtype=torch.float64, requires_grad=True)
              for shape in ((b, c, h, w), (b, c), (b, c), (b, c, h), (b, c, w))]
    assert torch.autograd.gradcheck(_SeparableModulation.apply, inputs)


@pytest.mark.parametrize("channels_last", [False, True])
def test_inside_gradients_match_the_plain_formula_float32(channels_last, blocking):
    torch.manual_seed(2)
    b, c, h, w = 4, 8, 9, 13
    blocking(c, h * w)
    x = torch.randn(b, c, h, w, requires_grad=True)
    leaves = [torch.randn(b, c, requires_grad=True) for _ in range(6)]
    grad = torch.randn(b, c, h, w)
    if channels_last:
        grad = grad.contiguous(memory_format=torch.channels_last)

    def params():
        mu_x, mu_y, sx, sy, gamma, beta = leaves
        return InsideParams(mu_x.tanh(), mu_y.tanh(), 0.1 + sx.sigmoid(), 0.1 + sy.sigmoid(), gamma, beta)

    layer = INSIDE(c, 2)
    y = layer.modulate(x, params())
    fast = torch.autograd.grad(y, [x, *leaves], grad)
    p = params()
    plain_y = (1 + p.gamma)[..., None, None] * (p.attention(h, w) * x) + p.beta[..., None, None]
    plain = torch.autograd.grad(plain_y, [x, *leaves], grad)
    # the shipped checkpoints evaluate to the same masks: the weight, then addcmul, as before the blocks
    rows, cols = p.attention_factors(h, w)
    weight = (rows * (1 + p.gamma).unsqueeze(-1)).unsqueeze(-1) * cols.unsqueeze(-2)
    assert torch.equal(y, torch.addcmul(p.beta[..., None, None], x, weight))
    for a, b_ in zip(fast, plain, strict=True):
        assert torch.allclose(a, b_, rtol=1e-4, atol=1e-4)


def saved_full_size(fn, x: torch.Tensor) -> set[str]:
    """Which full-size tensors (x's number of elements) autograd keeps for the backward of fn(): "x" or
    "other" (a new tensor, counted once per storage)."""
    kept: dict[int, str] = {}

    def pack(t):
        if t.numel() == x.numel():
            kept[t.untyped_storage().data_ptr()] = "x" if t.untyped_storage().data_ptr() == x.data_ptr() else "other"
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sorted(kept.values())


def test_spatial_layers_keep_only_x_for_backward():
    torch.manual_seed(0)
    b, c, h, w = 3, 4, 6, 5
    x, z = torch.randn(b, c, h, w, requires_grad=True), torch.randn(b, 2)
    for layer in (INSIDE(c, 2), GuidingBlock(c, 2, h, w)):
        assert saved_full_size(lambda layer=layer: layer(x, z), x) == ["x"], type(layer).__name__
    # the count sees new full-size tensors: the plain broadcast formula keeps its attention map
    p = INSIDE(c, 2).params(z)
    assert saved_full_size(lambda: (1 + p.gamma)[..., None, None] * (p.attention(h, w) * x), x).count("other") >= 1


# --------------------------------------------------------------------------------------------
# Threads (README, Speed): the hypernetwork and INSIDE's Gaussians run on one thread, the blocks are spread
# over the threads; the numbers must not change with any of it.


def test_hypernetwork_equals_its_modules_and_runs_on_one_thread():
    torch.manual_seed(3)
    net = layers_module.Hypernetwork(5, 12, 8)
    z = torch.randn(7, 5, requires_grad=True)
    grad = torch.randn(7, 12)
    counts = []
    net.body[1].register_forward_hook(lambda *_: counts.append(torch.get_num_threads()))  # not called: modules
    out = net(z)
    plain = net.head(net.body(z))
    assert torch.equal(out, plain)
    fast = torch.autograd.grad(out, [z, *net.parameters()], grad)
    slow = torch.autograd.grad(plain, [z, *net.parameters()], grad)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert counts == [torch.get_num_threads()]  # only the plain call above went through the modules


def test_on_one_thread_forward_and_backward_run_on_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        counts = {}
        a, b = torch.randn(3, 4, requires_grad=True), torch.randn(4, requires_grad=True)
        unused = torch.randn(2, requires_grad=True)

        def fn(a_, b_, unused_):
            counts["forward"] = torch.get_num_threads()
            product = a_ * b_
            product.register_hook(lambda g: counts.update(backward=torch.get_num_threads()))
            return product.exp(), (a_ + 1).sum(1)

        first, second = kernels.on_one_thread(fn, a, b, unused)
        assert torch.get_num_threads() == 2
        grads = torch.autograd.grad(first.sum(), [a, b, unused], allow_unused=True)  # `second` unused
        assert counts == {"forward": 1, "backward": 1}
        plain = torch.autograd.grad((a * b).exp().sum(), [a, b])
        assert torch.equal(grads[0], plain[0]) and torch.equal(grads[1], plain[1]) and grads[2] is None
        assert torch.equal(second, (a + 1).sum(1))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["inside", "guideme"])
def test_blocks_spread_over_threads_give_the_numbers_of_one_thread(kind, monkeypatch):
    # many blocks (channel ranges and whole samples): at 2 threads they go to two Python threads at once
    torch.manual_seed(5)
    b, c, h, w = 5, 6, 7, 9
    x, z, grad = torch.randn(b, c, h, w, requires_grad=True), torch.randn(b, 3), torch.randn(b, c, h, w)
    layer = INSIDE(c, 3) if kind == "inside" else GuidingBlock(c, 3, h, w)
    before = torch.get_num_threads()
    results = {}
    try:
        for block in (2 * h * w, 2 * c * h * w):
            monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", block)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                y, _ = layer(x, z)
                results[block, threads] = (y, *torch.autograd.grad(y, [x, *layer.parameters()], grad))
                with torch.inference_mode():
                    assert torch.equal(layer(x, z)[0], y)
    finally:
        torch.set_num_threads(before)
    reference = results[2 * h * w, 1]
    for key, values in results.items():
        assert torch.equal(values[0], reference[0]), key  # forward: bit-identical
        for a, b_ in zip(values[1:], reference[1:], strict=True):
            torch.testing.assert_close(a, b_, rtol=1e-5, atol=1e-5)
