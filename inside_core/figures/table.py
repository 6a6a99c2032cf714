"""The results table: `inside compare`'s comparison table for loaded models, as LaTeX (booktabs) and
Markdown, and `write_table` to put both next to each other."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .samples import MODEL_NAMES, _default_data

__all__ = ["results_table", "write_table"]


def _display_card(card: dict) -> dict:
    """A copy of a model card whose conditioning reads as in a paper (INSIDE, Guide Me, ...)."""
    conditioning = card.get("conditioning", "none")
    return {**card, "conditioning": MODEL_NAMES.get(conditioning, conditioning)}


def results_table(models: Sequence, data: str | os.PathLike | None = None, split: str = "test",
                  seed: int | None = None, use_card_metrics: bool = False) -> dict[str, str]:
    """{"latex": ..., "markdown": ...}: the comparison table of `inside compare` for loaded models.

    Each model is evaluated by `inside_core.evaluate.evaluate_model` on `data` (default: the bundled
    dataset of its card), or, with `use_card_metrics`, the metrics stored in its card are used as is.
    The table itself is `inside_core.evaluate.comparison_table`: one implementation for both commands.
    """
    from inside_core.evaluate import comparison_table, evaluate_model

    results = []
    for model in models:
        card = dict(getattr(model, "card", None) or {})
        if not card.get("name"):
            raise ValueError("every model in a table needs a card with a name (load it with load_checkpoint)")
        if use_card_metrics:
            metrics = card.get("metrics") or {}
            if "dice" not in metrics:
                raise ValueError(f"the card of {card['name']} holds no test metrics; drop --use-card-metrics")
        else:
            root = data if data is not None else _default_data(card)
            metrics = evaluate_model(model, card, root, split, seed)
        results.append((_display_card(card), metrics))
    latex = comparison_table(results, "latex")
    latex = "% INSIDE Explorer comparison table; needs \\usepackage{booktabs}\n" + latex
    return {"latex": latex, "markdown": comparison_table(results, "markdown")}


def write_table(tables: dict[str, str], out: str | os.PathLike) -> list[Path]:
    """Write the LaTeX table to FILE.tex and the Markdown one to FILE.md (FILE = `out` without suffix)."""
    out = Path(out)
    if out.suffix not in (".tex", ".md"):
        raise ValueError(f"a table is written as .tex or .md, got {out.name}")
    from inside_core.checkpoints import atomic_write_text

    paths = [out.with_suffix(".tex"), out.with_suffix(".md")]
    atomic_write_text(paths[0], tables["latex"] + "\n")
    atomic_write_text(paths[1], tables["markdown"] + "\n")
    return paths
