"""The conditioning controls of the page, drawn from the model's condition (`inside_core.conditions`).

    values = draw_controls(condition, source, index)     # draws the widgets, returns what they hold

Each `Control` of the condition becomes one widget keyed by the control's key (also its URL key):
a slider for "slider", a select box for "select", a slider over the sample's slices for "stack"
(whose value in z is the slice's position from base to apex, as the data decided it). The page never
reads a control's value before its widget is drawn: `draw_controls` is the only place they come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app import page_state
from inside_core.conditions import Condition, Control


@dataclass
class ControlValues:
    """What the controls hold: by widget key (`values`, e.g. a slice index) and as the condition's
    `encode` takes them (`z_values`, e.g. the slice's position), and the caption saying what z is."""

    values: dict[str, Any]
    z_values: dict[str, Any]
    caption: str
    notes: list[str] = field(default_factory=list)


def _stack_default(source, index: int) -> int:
    order = source.slice_order(index)
    return order[len(order) // 2]


def _draw_one(control: Control, source, index: int, container) -> tuple[Any, Any]:
    """Draw one control; (widget value, value for encode)."""
    if control.kind == "select":
        page_state.default(control.key, control.default, control.valid)
        value = container.selectbox(control.label, list(control.options), key=control.key, persist_state="session",
                                    help=control.help or None)
        return value, value
    if control.kind == "stack":
        order = source.slice_order(index)  # slice indices from base to apex
        page_state.default(control.key, _stack_default(source, index), lambda v: int(v) in order)
        if len(order) > 1:
            container.select_slider(control.label, options=order, key=control.key, persist_state="session",
                                    help=control.help or None,
                                    format_func=lambda k: f"{k} · {source.position(index, k):.2f}")
        slice_index = int(st.session_state[control.key])
        return slice_index, source.position(index, slice_index)
    page_state.default(control.key, control.default, control.valid)
    value = container.slider(control.label, float(control.low), float(control.high), step=float(control.step),
                             key=control.key, persist_state="session", help=control.help or None)
    return float(value), float(value)


def draw_controls(condition: Condition, source, index: int) -> ControlValues:
    """The condition's controls in one row, then (by the caller) a caption; returns their values."""
    columns = st.columns(len(condition.controls)) if len(condition.controls) > 1 else [st]
    values, z_values = {}, {}
    for control, column in zip(condition.controls, columns, strict=True):
        values[control.key], z_values[control.key] = _draw_one(control, source, index, column)
    return ControlValues(values, z_values, condition.caption_for(z_values))
