"""The page's state: widget keys, their defaults, and their round trip through the URL query string.

Every widget that decides what the page shows has a key listed in `URL_KEYS`; its value lives in
`st.session_state[key]` (per browser session, never shared). On a session's first run the query
string seeds those values, so a copied link reopens the same view; after every run the query string
is rewritten from them. `settings()` is the same state as a dict (the JSON export).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

_TRUE = {"1", "true", "yes", "on"}


def _bool(text: str) -> bool:
    return str(text).strip().lower() in _TRUE


def number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


# key -> parser of its query-string text (values must survive str() -> parser())
URL_KEYS: dict[str, Callable[[str], Any]] = {
    "dataset": str, "source": str, "data_dir": str, "split": str, "model": str, "model_path": str,
    "sample": int, "loc_x": number, "loc_y": number, "radius": number, "value": str, "phase": number,
    "slice": int, "follow": _bool, "view": str, "layer": int, "channel": str, "show_gt": _bool,
    "compare_model": str, "sweep_var": str, "sweep_steps": int,
}
RESTORED_FLAG = "_restored_from_url"
FIRST_QUERY = "_first_query"  # the query string of the session's first run, for `url_control`
CONTROL_KEYS = "_url_control_keys"  # this session's extra URL keys: a dataset's own variables


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def restore_from_url() -> list[str]:
    """Seed session state from the query string, once per session. Returns the keys it could not read."""
    if st.session_state.get(RESTORED_FLAG):
        return []
    st.session_state[RESTORED_FLAG] = True
    st.session_state[FIRST_QUERY] = {key: st.query_params[key] for key in st.query_params}
    unreadable = []
    for key, parse in URL_KEYS.items():
        if key in st.query_params:
            try:
                st.session_state[key] = parse(st.query_params[key])
            except (TypeError, ValueError):
                unreadable.append(key)
    return unreadable


def url_controls(parsers: Mapping[str, Callable[[str], Any]]) -> None:
    """Put the controls that `URL_KEYS` does not name (the variables of a user's own dataset, keyed by
    their names) into this session's URL too, replacing the last condition's, and seed each from the
    session's first query string if it was there and is not set yet. Per session: other sessions'
    datasets add nothing here."""
    extra = [key for key in parsers if key not in URL_KEYS]
    st.session_state[CONTROL_KEYS] = extra
    first = st.session_state.get(FIRST_QUERY, {})
    for key in extra:
        if key in first and key not in st.session_state:
            try:
                st.session_state[key] = parsers[key](first[key])
            except (TypeError, ValueError):
                pass  # the control's default is used, as for any unreadable value


def current() -> dict[str, Any]:
    """The URL keys that are set now, with their values."""
    keys = [*URL_KEYS, *st.session_state.get(CONTROL_KEYS, [])]
    return {key: st.session_state[key] for key in keys if key in st.session_state
            and st.session_state[key] is not None and st.session_state[key] != ""}


def sync_url() -> None:
    """Rewrite the query string from the current state (only if something changed)."""
    wanted = {key: _text(value) for key, value in current().items()}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def settings(extra: Mapping[str, Any] | None = None, state: Mapping[str, Any] | None = None) -> str:
    """The settings (`state`, default: the current ones) as pretty JSON, with the query string that reopens
    them."""
    state = dict(current() if state is None else state)
    query = "&".join(f"{key}={_text(value)}" for key, value in state.items())
    payload = {"settings": state, "query_string": "?" + query, **(dict(extra) if extra else {})}
    return json.dumps(payload, indent=2, default=str)


def default(key: str, value: Any, valid: Callable[[Any], bool] | None = None) -> Any:
    """Make sure `key` holds a usable value before its widget is drawn (the widget takes no `value=`,
    so URL-restored values and defaults never fight). Returns the value."""
    if key not in st.session_state or (valid is not None and not _safe(valid, st.session_state[key])):
        st.session_state[key] = value
    return st.session_state[key]


def _safe(check: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(check(value))
    except (TypeError, ValueError):
        return False
