"""The N-D conditioning layers: the fused INSIDE against its plain formula (values and gradients), Guide Me's
per-axis vectors, FiLM's broadcast, and agreement with the 2-D layers' formulas."""

import math

import pytest
import torch

from inside_core import INSIDE, InsideParams
from inside_core.layer_kernels import _GuidingModulation, _SeparableModulation
from inside_core.layers_nd import FiLMND, GuidingBlockND, GuidingParamsND, InsideND, InsideParamsND, outer_product
from tests import test_layers
from tests.test_layers import saved_full_size

blocking = test_layers.blocking  # the fixture that cuts the layers' work into several blocks


def plain_inside(x, params: InsideParamsND):
    """INSIDE as the docstring writes it, composed of broadcasts (what the fused layer must equal)."""
    n = x.dim() - 2
    ones = [1] * n
    a = params.attention(x.shape[2:])
    return (1 + params.gamma).view(*params.gamma.shape, *ones) * (a * x) + params.beta.view(*params.beta.shape, *ones)


@pytest.mark.parametrize("size", [(7,), (5, 6), (4, 5, 6), (3, 4, 2, 5)])
def test_inside_nd_matches_plain_formula_and_its_gradients(size, blocking):
    torch.manual_seed(0)
    n = len(size)
    blocking(3, math.prod(size))
    layer = InsideND(channels=3, cond_dim=2, spatial_dims=n, sigma_max=0.8).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, 2, dtype=torch.float64)
    grad = torch.randn(2, 3, *size, dtype=torch.float64)

    y, params = layer(x, z)
    expected = plain_inside(x, layer.params(z))
    torch.testing.assert_close(y, expected)
    # bit-identical to the weight the layer built before it ran in blocks (the shipped 3-D card)
    p = layer.params(z)
    weight = outer_product([p.attention_factors(size)[0] * (1 + p.gamma).unsqueeze(-1), *p.attention_factors(size)[1:]])
    assert torch.equal(y, torch.addcmul(p.beta.view(*p.beta.shape, *[1] * n), x, weight))
    fused = torch.autograd.grad(y, [x, *layer.parameters()], grad)
    plain = torch.autograd.grad(expected, [x, *layer.parameters()], grad)
    for a, b in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, b)
    # and against finite differences, through the custom backward alone
    params = layer.params(z)
    factors = [f.detach().requires_grad_() for f in params.attention_factors(size)]
    scale = (1 + params.gamma).detach().requires_grad_()
    shift = params.beta.detach().requires_grad_()
    assert torch.autograd.gradcheck(_SeparableModulation.apply, (x, scale, shift, *factors))


def test_inside_nd_attention_is_the_product_of_per_axis_gaussians():
    mu = torch.tensor([[[0.25, -0.125, 1 / 6]]])  # the centres of voxel (2, 3, 3)
    sigma = torch.tensor([[[0.2, 0.4, 0.3]]])
    params = InsideParamsND(mu=mu, sigma=sigma, gamma=torch.zeros(1, 1), beta=torch.zeros(1, 1))
    a = params.attention((4, 8, 6))
    assert a.shape == (1, 1, 4, 8, 6)
    d, h, w = 3, 5, 2
    t = [(2 * k + 1) / n - 1 for k, n in ((d, 4), (h, 8), (w, 6))]
    value = 1.0
    for tk, m, s in zip(t, mu[0, 0].tolist(), sigma[0, 0].tolist(), strict=True):
        value *= torch.exp(torch.tensor(-0.5 * ((tk - m) / s) ** 2)).item()
    assert a[0, 0, d, h, w].item() == pytest.approx(value, rel=1e-5)
    # the peak (1) sits at the voxel whose centre is the means
    assert a.flatten().argmax().item() == 2 * 48 + 3 * 6 + 3
    assert a.max().item() == pytest.approx(1.0)


def test_inside_nd_in_2d_computes_the_2d_layers_formula():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 10)
    p2 = InsideParams(mu_x=torch.rand(2, 4) - 0.5, mu_y=torch.rand(2, 4) - 0.5, sigma_x=torch.rand(2, 4) + 0.1,
                      sigma_y=torch.rand(2, 4) + 0.1, gamma=torch.randn(2, 4), beta=torch.randn(2, 4))
    pn = InsideParamsND(mu=torch.stack([p2.mu_y, p2.mu_x], -1), sigma=torch.stack([p2.sigma_y, p2.sigma_x], -1),
                        gamma=p2.gamma, beta=p2.beta)
    y2 = INSIDE(4, 3).modulate(x, p2)
    yn = InsideND(4, 3, spatial_dims=2).modulate(x, pn)
    torch.testing.assert_close(yn, y2)


def test_inside_nd_sigma_is_bounded_and_penalty_positive():
    layer = InsideND(8, 3, spatial_dims=3, sigma_max=0.3)
    params = layer.params(torch.randn(5, 3) * 50)
    assert params.mu.shape == params.sigma.shape == (5, 8, 3)
    assert (params.sigma > 0).all() and (params.sigma <= 0.3).all() and (params.mu.abs() <= 1).all()
    assert layer.sigma_penalty(params).item() > 0


def test_film_nd_is_per_channel_affine():
    torch.manual_seed(2)
    layer = FiLMND(3, 2, spatial_dims=3)
    x, z = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 2)
    y, p = layer(x, z)
    torch.testing.assert_close(y, (1 + p.gamma)[..., None, None, None] * x + p.beta[..., None, None, None])


def test_guideme_nd_adds_one_vector_per_axis():
    torch.manual_seed(3)
    layer = GuidingBlockND(3, 2, size=(4, 5, 6))
    x, z = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 2)
    y, p = layer(x, z)
    assert [v.shape for v in p.along] == [(2, 4), (2, 5), (2, 6)]
    a, b, c = p.along
    spatial = a[:, :, None, None] + b[:, None, :, None] + c[:, None, None, :]
    expected = (1 + spatial[:, None] + p.gamma_scale[..., None, None, None]) * x + p.gamma_shift[..., None, None, None]
    torch.testing.assert_close(y, expected)
    with pytest.raises(ValueError, match="built for size"):
        layer(torch.randn(2, 3, 4, 5, 7), z)
    # params can be set by hand, sliced and detached like the 2-D dataclasses
    p1 = p[0:1].detach()
    assert isinstance(p1, GuidingParamsND) and p1.along[2].shape == (1, 6) and not p1.along[0].requires_grad
    assert set(p.as_dict()) == {"gamma_scale", "gamma_shift", "along_0", "along_1", "along_2"}


@pytest.mark.parametrize("size", [(4, 5, 6), (3, 2, 4, 3)])
def test_guideme_nd_gradients_match_the_plain_formula(size, blocking):
    torch.manual_seed(4)
    n = len(size)
    blocking(3, math.prod(size))
    layer = GuidingBlockND(3, 2, size=size).double()
    x = torch.randn(4, 3, *size, dtype=torch.float64, requires_grad=True)
    z = torch.randn(4, 2, dtype=torch.float64)
    y, p = layer(x, z)
    ones = [1] * n
    scale = 1 + p.spatial_map().unsqueeze(1) + p.gamma_scale.view(4, 3, *ones)
    plain = torch.addcmul(p.gamma_shift.view(4, 3, *ones), x, scale)
    assert torch.equal(y, plain)  # the same operations in the same order as before the custom Function
    grad = torch.randn_like(y)
    for a, b in zip(torch.autograd.grad(y, [x, *layer.parameters()], grad, retain_graph=True),
                    torch.autograd.grad(plain, [x, *layer.parameters()], grad), strict=True):
        torch.testing.assert_close(a, b)
    leaves = [x, (1 + p.spatial_map()).detach().requires_grad_(), p.gamma_scale.detach().requires_grad_(),
              p.gamma_shift.detach().requires_grad_()]
    assert torch.autograd.gradcheck(_GuidingModulation.apply, leaves)


def test_3d_layers_keep_at_most_x_for_backward():
    # issue 22: 3-D INSIDE keeps at most one extra (B, C, D, H, W) tensor; it keeps none, nor does Guide Me
    x, z = torch.randn(2, 3, 4, 5, 6, requires_grad=True), torch.randn(2, 2)
    for layer in (InsideND(3, 2), GuidingBlockND(3, 2, size=(4, 5, 6))):
        assert saved_full_size(lambda layer=layer: layer(x, z), x) == ["x"], type(layer).__name__


def test_nd_layers_refuse_wrong_shapes():
    with pytest.raises(ValueError, match="expects features"):
        InsideND(3, 2, spatial_dims=3)(torch.randn(1, 3, 4, 4), torch.randn(1, 2))
    with pytest.raises(ValueError, match="expects z"):
        FiLMND(3, 2)(torch.randn(1, 3, 4, 4, 4), torch.randn(1, 5))


def test_outer_product_shape():
    f = [torch.rand(2, 3, n) for n in (2, 3, 4)]
    o = outer_product(f)
    assert o.shape == (2, 3, 2, 3, 4)
    torch.testing.assert_close(o[1, 2, 1, 2, 3], f[0][1, 2, 1] * f[1][1, 2, 2] * f[2][1, 2, 3])
