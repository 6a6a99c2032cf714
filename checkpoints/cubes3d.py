"""The shipped 3-D example: a MONAI UNet on volumes, conditioned by `inside_core.condition` with 3-D INSIDE.

    python checkpoints/cubes3d.py [--out checkpoints/volumes/cubes3d-unet-inside] [--steps 300]

Task (`inside_core.data.cubes3d`, generated in memory): two cubes per 16^3 volume, one in each half along W;
z (one-hot) names the half whose cube is the target. Trains with Adam on fresh batches from generator seed 1,
tests on 200 volumes from seed 1000 (never seen in training): mean Dice per volume with the true z, and with
z swapped (the other cube is then the right answer, so a model that ignores z cannot score well on both).
Writes the checkpoint with its card (test metrics in it). The training loop is here, not in `inside train`,
because that loop reads 2-D datasets only so far. It lives in checkpoints/volumes/, apart from the 2-D
models the dashboard lists (the page does not show volumes yet).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from inside_core import build_model, save_checkpoint
from inside_core.data.cubes3d import two_cubes
from inside_core.metrics import dice

ARCHITECTURE = {
    "network": "monai.UNet",
    "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": [8, 16, 16], "strides": [2, 2]},
    "conditioning": {"at": ["model.1.submodule.1", "model.2"], "layer": "inside", "sigma_max": 0.5},
    "cond_dim": 2, "image_size": [16, 16, 16],
}


def mean_dice(model: nn.Module, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(x, z).logits
    scores = [dice(logits[i] > 0, y[i] > 0) for i in range(len(x))]
    return statistics.mean(scores), statistics.stdev(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="checkpoints/volumes/cubes3d-unet-inside")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model("wrapped", **ARCHITECTURE)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for step in range(args.steps):
        x, y, z = two_cubes(args.batch, train)
        out = model(x, z)
        loss = nn.functional.binary_cross_entropy_with_logits(out.logits, y) + model.sigma_penalty(out.conditioning)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}", flush=True)
    elapsed = time.perf_counter() - start
    model.eval()
    x, y, z, other = two_cubes(200, torch.Generator().manual_seed(1000), with_other=True)
    true_z, true_sd = mean_dice(model, x, y, z)
    swapped, swapped_sd = mean_dice(model, x, other, z.flip(1))  # with z swapped the answer is the other cube
    print(f"test Dice, true z {true_z:.3f} ± {true_sd:.3f}; z swapped (target: the other cube) "
          f"{swapped:.3f} ± {swapped_sd:.3f}")
    card = {
        "name": args.out.rsplit("/", 1)[-1], "dataset": "cubes3d", "conditioning": "inside",
        "z_encoding": "one-hot over (first half, second half) of the volume along W: the half whose cube is the "
                      "target (inside_core.data.cubes3d)",
        "data": {"generate": "inside_core.data.cubes3d.two_cubes(n, torch.Generator().manual_seed(1), 16)",
                 "synthetic": True, "test_seed": 1000, "test_count": 200},
        "train": {"steps": args.steps, "batch_size": args.batch, "lr": 3e-3, "loss": "bce"},
        "seed": 0, "training_time_s": round(elapsed, 1),
        "metrics": {"dice": round(true_z, 4), "dice_std": round(true_sd, 4), "dice_z_swapped": round(swapped, 4),
                    "dice_z_swapped_std": round(swapped_sd, 4), "n": 200, "split": "test (seed 1000)"},
        "command": f"python checkpoints/cubes3d.py --out {args.out} --steps {args.steps} --batch {args.batch}",
    }
    print(save_checkpoint(model, card, args.out))


if __name__ == "__main__":
    main()
