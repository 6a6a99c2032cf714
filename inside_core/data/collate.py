"""Batching for `torch.utils.data.DataLoader`: stack the tensors, keep the metas as a list.

PyTorch's default collate cannot batch the meta dicts (their lists differ in length from item to item,
e.g. the CLEVR-Seg target's object indices), so pass `collate_fn=inside_core.data.collate`.
"""

from __future__ import annotations

import torch


def collate(items: list[dict]) -> dict:
    """dict(image (B, ...), z (B, D), mask (B, ...), meta [dict, ...]) from a list of dataset items."""
    return {
        "image": torch.stack([item["image"] for item in items]),
        "z": torch.stack([item["z"] for item in items]),
        "mask": torch.stack([item["mask"] for item in items]),
        "meta": [item["meta"] for item in items],
    }
