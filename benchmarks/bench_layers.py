"""Speed of the INSIDE layer against FiLM, and of a whole training step against no conditioning.

    python benchmarks/bench_layers.py [--repeats 30] [--threads N]

Prints, from one run on this machine:
1. forward + backward of one conditioning layer at the reference bottleneck (32, 64, 50, 50):
   INSIDE / FiLM (target <= 1.5), with the plain broadcast composition of INSIDE for reference;
2. one training step (forward, loss, backward, Adam) of the CLEVR-Seg encoder-decoder at 128x128,
   batch 32: INSIDE / no conditioning (target <= 1.10);
3. the extra memory INSIDE keeps for its backward pass, in (B, C, H, W) tensors.
Timings are medians over interleaved repeats, so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inside_core import INSIDE, FiLM, build_model


def plain_inside(x: torch.Tensor, z: torch.Tensor, layer: INSIDE) -> torch.Tensor:
    """INSIDE written as a straightforward composition of broadcasts (what autograd would keep)."""
    p = layer.params(z)
    a = p.attention(x.shape[2], x.shape[3])
    return (1 + p.gamma)[..., None, None] * (a * x) + p.beta[..., None, None]


def time_interleaved(functions: dict, repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn so they share the load."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def layer_benchmark(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    b, c, h, w, d = 32, 64, 50, 50, 4
    x = torch.randn(b, c, h, w, requires_grad=True)
    z = torch.eye(d)[torch.randint(0, d, (b,))]
    grad = torch.randn(b, c, h, w)
    film, inside = FiLM(c, d), INSIDE(c, d)

    def step(fn):
        def run():
            x.grad = None
            fn().backward(grad)
        return run

    return time_interleaved({
        "film": step(lambda: film(x, z)[0]),
        "inside": step(lambda: inside(x, z)[0]),
        "inside_plain": step(lambda: plain_inside(x, z, inside)),
    }, repeats)


def network_benchmark(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    size, batch = 128, 32
    x = torch.rand(batch, 3, size, size)
    z = torch.eye(4)[torch.randint(0, 4, (batch,))]
    target = (torch.rand(batch, 1, size, size) > 0.5).float()
    steps = {}
    for conditioning in ("none", "inside"):
        model = build_model("encoder_decoder", conditioning=conditioning, cond_dim=4, image_size=size)
        optimiser = torch.optim.Adam(model.parameters())

        def run(model=model, optimiser=optimiser):
            optimiser.zero_grad(set_to_none=True)
            out = model(x, z)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, target)
            loss = loss + model.sigma_penalty(out.conditioning)
            loss.backward()
            optimiser.step()

        steps[conditioning] = run
    return time_interleaved(steps, repeats, warmup=2)


def saved_full_size_tensors(fn, full_size: int) -> int:
    """How many distinct tensors of `full_size` elements autograd saves for the backward pass of fn()."""
    pointers = set()

    def pack(t):
        if t.numel() == full_size:
            pointers.add(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return len(pointers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per variant (default 30)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    layer = layer_benchmark(args.repeats)
    print("\nOne layer, forward + backward, x of shape (32, 64, 50, 50):")
    for name, seconds in layer.items():
        print(f"  {name:13s} {seconds * 1e3:7.2f} ms")
    print(f"  INSIDE / FiLM          = {layer['inside'] / layer['film']:.2f}   (target <= 1.5)")
    print(f"  plain INSIDE / FiLM    = {layer['inside_plain'] / layer['film']:.2f}   (for reference)")

    network = network_benchmark(max(5, args.repeats // 3))
    print("\nTraining step of the CLEVR-Seg encoder-decoder, 128x128, batch 32:")
    for name, seconds in network.items():
        print(f"  {name:13s} {seconds * 1e3:7.1f} ms")
    print(f"  INSIDE / no conditioning = {network['inside'] / network['none']:.3f}   (target <= 1.10)")

    b, c, h, w = 32, 64, 50, 50
    x = torch.randn(b, c, h, w, requires_grad=True)
    z = torch.eye(4)[torch.randint(0, 4, (b,))]
    layer_inside, layer_film = INSIDE(c, 4), FiLM(c, 4)
    full = b * c * h * w
    inside_saved = saved_full_size_tensors(lambda: layer_inside(x, z), full)
    film_saved = saved_full_size_tensors(lambda: layer_film(x, z), full)
    print(f"\n(B, C, H, W) tensors kept for backward: INSIDE {inside_saved}, FiLM {film_saved} (both count x itself)")


if __name__ == "__main__":
    main()
