"""What the browser would need to run a model's decoder itself (docs/dashboard.md, "Evaluated and left"):
the bytes of the encoder's output that `Explorer` keeps (`networks.Features`: the tensor at the split point
and the skips), as float32, for each shipped INSIDE model, against the pictures made ahead today.

    python benchmarks/decoder_features.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def feature_bytes(name: str) -> tuple[int, int]:
    """(float32 bytes of the kept encoder output, all parameters: an upper bound of the decoder's weights)."""
    from inside_core.checkpoints import load_checkpoint, read_card
    from inside_core.explorer import Explorer

    path = REPO / "checkpoints" / f"{name}.safetensors"
    card = read_card(path)
    model = load_checkpoint(path).eval()
    height, width = card["image_size"]
    explorer = Explorer(model, torch.rand(int(getattr(model, "in_channels", 3)), height, width))
    tensors = [explorer.features.tensor, *explorer.features.skips]
    return sum(t.numel() * 4 for t in tensors), sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    for name in ("clevr-seg-quadrant-inside", "acdc-phantom-inside"):
        features, parameters = feature_bytes(name)
        print(f"{name}: encoder output {features / 1e6:.2f} MB float32 per image; "
              f"{parameters / 1e6:.2f} M parameters in all (the decoder's weights are fewer)")
