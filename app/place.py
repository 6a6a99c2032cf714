"""Where the page's image comes from, and its view for any control values.

A `Place` is data handed forward (the model's condition, the source, the sample, whether the image follows
the controls): the page asks `view_at(place, values)` for its own view (app/main.py), and the pictures made
ahead ask it for each point's (app/scrub.py), from what the source offers: the image (ACDC: the cine frame
for the phase, the chosen slice, where it follows the controls), the ground truth for the model's
condition, notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import loading


@dataclass(frozen=True)
class Place:
    """The model's `condition`, the `source` and its sample `index`; `follow`: the image follows the controls
    (a cine). `identity` names what the views depend on besides the controls where the image follows them
    (model, source, sample, the toggle), else None: the pictures made ahead are then named by their explorer."""

    condition: Any
    source: Any
    index: int
    follow: bool = True
    identity: str | None = None


def place_of(entry: Any, condition: Any, source: Any, index: int, follow: bool) -> Place:
    """The page's place for the model `entry` (a checkpoint entry, its `path`)."""
    moving = "cine" in source.offers  # each point of the pad may be another image
    identity = f"{entry.path}|{source.label}|{id(source)}|{index}|{follow}" if moving else None
    return Place(condition, source, index, follow, identity)


def view_at(place: Place, values: dict) -> Any:
    """The view (`.key`, `.image`, `.ground_truth`, `.notes`) for these control values."""
    source, index, condition, follow = place.source, place.index, place.condition, place.follow
    if "scene" in source.offers:
        return source.view(index, values, follow, condition, objects=loading.clevr_objects(source, source.label,
                                                                                          index))
    if "cine" in source.offers:
        moving = follow and 0 < float(values.get("phase", 0)) < 1
        cine = loading.acdc_cine(source, source.label, index, int(values.get("slice", 0))) if moving else []
        return source.view(index, values, follow, condition, cine=cine)
    return source.view(index, values, follow, condition)
