"""The training losses, by the name a config gives them (`train.loss`), built from MONAI's.

    loss = make_loss({"loss": "dice+ce"})     # loss(logits, target) -> scalar
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["make_loss", "LOSSES"]

LOSSES = ("focal", "focal+dice", "dice+ce")


def make_loss(train_cfg: dict) -> nn.Module:
    """The task loss named in the config, built from MONAI's losses.

    focal       sigmoid focal loss  FL = -(1 - p_t)^gamma log p_t      (binary masks, logits (B, 1, H, W))
    focal+dice  focal + soft Dice 1 - 2 sum(p g) / (sum p + sum g)    (binary)
    dice+ce     soft Dice (softmax) + cross-entropy                    (multi-class, mask (B, H, W) labels)
    """
    from monai.losses import DiceCELoss, DiceLoss, FocalLoss

    name = train_cfg["loss"]
    gamma = float(train_cfg.get("focal_gamma", 2.0))
    if name == "focal":  # binary: a (B, H, W) label map (a user's folder) becomes a float (B, 1, H, W) mask
        return _LabelsToChannel(FocalLoss(gamma=gamma, use_softmax=False), as_float=True)
    if name == "focal+dice":
        focal, dice = FocalLoss(gamma=gamma, use_softmax=False), DiceLoss(sigmoid=True)
        return _LabelsToChannel(_Sum(focal, dice), as_float=True)
    if name == "dice+ce":
        return _LabelsToChannel(DiceCELoss(to_onehot_y=True, softmax=True))
    raise ValueError(f"unknown loss {name!r}; choose {', '.join(LOSSES)}")


class _Sum(nn.Module):
    def __init__(self, *losses: nn.Module):
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return sum(loss(logits, target) for loss in self.losses)


class _LabelsToChannel(nn.Module):
    """MONAI wants label maps as (B, 1, H, W); ACDC's and a user's folder's masks are (B, H, W) integers
    (`as_float`: the binary losses want them as float masks)."""

    def __init__(self, loss: nn.Module, as_float: bool = False):
        super().__init__()
        self.loss, self.as_float = loss, as_float

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = target.unsqueeze(1) if target.dim() == 3 else target
        return self.loss(logits, target.float() if self.as_float else target)
