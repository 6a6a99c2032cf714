"""What conditioning someone else's network costs: the wrapper's split, the 3-D layers, the hooks.

    python benchmarks/bench_wrap.py [--repeats 10] [--threads N] [--only 1 2 3] [--keep-freed-memory]

Prints, from one run on this machine (random weights and inputs: speed does not depend on training):
1. decode / full forward, batch 1, 128x128, inference mode: a MONAI BasicUNet wrapped with INSIDE after
   down_4 and upcat_1 (`inside_core.condition`) against our own U-Net with INSIDE at its bottleneck
   (what the dashboard re-runs per control move, as a share of the whole network);
2. 3-D INSIDE / 3-D FiLM, forward + backward of one layer at (2, 32, 32, 64, 64) (target <= 1.3), and the
   full-size tensors each keeps for its backward besides its input (target: INSIDE at most one); 3-D Guide Me
   for reference;
3. one training step (forward, loss, backward, Adam) of a 2-D BasicUNet with INSIDE after down_4 and
   upcat_1, batch 8 at 128x128: the wrapper / the same layers written into the network's forward by hand
   (target <= 1.05), and the wrapper's own cost per step measured on a 32x32 image (where the arithmetic does not
   drown it) as a share of that step.
Timings are medians over interleaved repeats; a ratio is the median of the per-repeat ratios (both sides
measured back to back) with its interquartile range, so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import inside_core.threads as threads  # isort: skip  # first: the wait policy must be set before torch loads
import torch
from monai.networks.nets import BasicUNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layers import keep_freed_memory, load_average, median_ms, paired_ratio, show_ratio, time_interleaved  # noqa

from inside_core import INSIDE, build_model, condition  # noqa: E402
from inside_core.layers_nd import FiLMND, GuidingBlockND, InsideND  # noqa: E402

FEATURES = (16, 16, 32, 64, 128, 16)


def decode_share(repeats: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 1, 128, 128)
    wrapped = condition(BasicUNet(spatial_dims=2, in_channels=1, out_channels=4, features=FEATURES),
                        at=["down_4", "upcat_1"], layer="inside", cond_dim=2).eval()
    ours = build_model("unet", conditioning="inside", cond_dim=2, in_channels=1, num_classes=4,
                       image_size=128).eval()
    z = torch.randn(1, 2)
    with torch.inference_mode():
        features = {"wrapped": wrapped.encode(x), "ours": ours.encode(x)}
        t = time_interleaved({
            "wrapped decode": lambda: wrapped.decode(features["wrapped"], z),
            "wrapped full": lambda: wrapped(x, z),
            "ours decode": lambda: ours.decode(features["ours"], z),
            "ours full": lambda: ours(x, z),
        }, repeats)
    report(t)
    print(show_ratio("wrapped BasicUNet: decode / full", paired_ratio(t["wrapped decode"], t["wrapped full"])))
    print(show_ratio("our U-Net: decode / full", paired_ratio(t["ours decode"], t["ours full"])))


def saved_full_size(fn, x: torch.Tensor) -> int:
    """How many tensors of x's size (other than x itself) autograd keeps for the backward of fn(x)."""
    seen: set[int] = set()

    def pack(t: torch.Tensor):
        if t.numel() == x.numel() and t.data_ptr() != x.data_ptr():
            seen.add(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return len(seen)


def layers_3d(repeats: int) -> None:
    torch.manual_seed(0)
    b, c = 2, 32
    x = torch.randn(b, c, 32, 64, 64, requires_grad=True)
    z = torch.randn(b, 3)
    grad = torch.randn_like(x)
    film, inside = FiLMND(c, 3, spatial_dims=3), InsideND(c, 3, spatial_dims=3)
    guide = GuidingBlockND(c, 3, size=x.shape[2:])

    def step(layer):
        def run():
            x.grad = None
            layer(x, z)[0].backward(grad)
        return run

    t = time_interleaved({"film3d": step(film), "inside3d": step(inside), "guideme3d": step(guide)}, repeats)
    report(t)
    print(show_ratio("3-D INSIDE / 3-D FiLM", paired_ratio(t["inside3d"], t["film3d"]), "<= 1.3"))
    print(show_ratio("3-D Guide Me / 3-D FiLM", paired_ratio(t["guideme3d"], t["film3d"])))
    kept = {name: saved_full_size(lambda layer=layer: layer(x, z), x)
            for name, layer in (("film3d", film), ("inside3d", inside), ("guideme3d", guide))}
    print("  full-size tensors kept for backward besides x: "
          + ", ".join(f"{name} {n}" for name, n in kept.items()) + "   (target: INSIDE <= 1)")


class HandWritten(BasicUNet):
    """BasicUNet's forward (MONAI 1.6) with the two INSIDE layers written in by hand."""

    def __init__(self, cond_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cond_down_4 = INSIDE(FEATURES[4], cond_dim)
        self.cond_upcat_1 = INSIDE(FEATURES[5], cond_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor):
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        x4, p4 = self.cond_down_4(self.down_4(x3), z)
        u4 = self.upcat_4(x4, x3)
        u3 = self.upcat_3(u4, x2)
        u2 = self.upcat_2(u3, x1)
        u1, p1 = self.cond_upcat_1(self.upcat_1(u2, x0), z)
        return self.final_conv(u1), [p4, p1]


def training_steps(size: int, batch: int):
    """One training step each of the hand-written network and the wrapped one, with the same weights."""
    torch.manual_seed(0)
    kwargs = {"spatial_dims": 2, "in_channels": 1, "out_channels": 4, "features": FEATURES}
    hand = HandWritten(2, **kwargs)
    wrapped = condition(BasicUNet(**kwargs), at=["down_4", "upcat_1"], layer="inside", cond_dim=2)
    wrapped.load_state_dict({k.replace("cond_down_4", "conditionings.0").replace("cond_upcat_1", "conditionings.1")
                             if k.startswith("cond_") else "network." + k: v for k, v in hand.state_dict().items()})
    x, z = torch.randn(batch, 1, size, size), torch.randn(batch, 2)
    target = torch.randint(0, 4, (batch, size, size))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimisers = {"hand": torch.optim.Adam(hand.parameters()), "wrapped": torch.optim.Adam(wrapped.parameters())}

    def step_hand():
        optimisers["hand"].zero_grad()
        logits, params = hand(x, z)
        penalty = hand.cond_down_4.sigma_penalty(params[0]) + hand.cond_upcat_1.sigma_penalty(params[1])
        (loss_fn(logits, target) + penalty).backward()
        optimisers["hand"].step()

    def step_wrapped():
        optimisers["wrapped"].zero_grad()
        out = wrapped(x, z)
        (loss_fn(out.logits, target) + wrapped.sigma_penalty(out.conditioning)).backward()
        optimisers["wrapped"].step()

    return {"hand-written step": step_hand, "wrapped step": step_wrapped}


def wrapper_overhead(repeats: int) -> None:
    t = time_interleaved(training_steps(128, 8), repeats, warmup=2)
    report(t)
    print(show_ratio("wrapped / hand-written step", paired_ratio(t["wrapped step"], t["hand-written step"]), "<= 1.05"))
    # the wrapper's own cost (hooks, the output object) does not grow with the image: measured on a 32x32 image,
    # where it is not drowned by the arithmetic, as a share of the step above
    tiny = time_interleaved(training_steps(32, 1), 20 * repeats, warmup=10)
    extra = statistics.median(w - h for w, h in zip(tiny["wrapped step"], tiny["hand-written step"], strict=True))
    print(f"  wrapper's own cost per step (32x32, batch 1: {median_ms(tiny['hand-written step']):.2f} ms hand-written):"
          f" {extra * 1e3:.3f} ms = {100 * extra / statistics.median(t['hand-written step']):.2f} % of the step above")


def report(samples: dict[str, list[float]]) -> None:
    for name, values in samples.items():
        print(f"  {name:40s} {median_ms(values):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="+", choices=["1", "2", "3"], help="run only these sections")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="as bench_layers.py's: timings without the page faults of fresh large tensors")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {threads.describe()}, {args.repeats} repeats"
          + (", freed memory kept by glibc" if args.keep_freed_memory else ""))
    for title, bench in (("1. decode / full, batch 1, 128x128", decode_share),
                         ("2. 3-D layer forward + backward at (2, 32, 32, 64, 64)", layers_3d),
                         ("3. BasicUNet training step, batch 8, 128x128", wrapper_overhead)):
        if args.only and title[0] not in args.only:
            continue
        print(f"\n{title}; {load_average()}:")
        bench(args.repeats)
        print(f"  ({load_average()} at the end)")


if __name__ == "__main__":
    main()
