"""The page's state, in one place: widget keys, their defaults, their round trip through the URL query
string, and the session's own objects (`session()`: caches and what the page last showed).

Every widget that decides what the page shows has a key listed in `URL_KEYS` (or is one of the model's
controls, `url_controls`); its value lives in `st.session_state[key]` (per browser session, never shared).
On a session's first run the query string seeds those values, so a copied link reopens the same view;
after every run the query string is rewritten from the keys the page has used (`default` and `use`
mark them): the sidebar's in its last run, the explorer area's since the dataset, data or model last
changed (so a view's options stay in the link while another view is shown). A key of another dataset
or model stays in the session (going back finds it) but never in a link. `settings()` is the same state
as a dict (the JSON export).

No other module reads or writes a private key of `st.session_state`: what a session keeps besides widget
values is one `Session` object, and the streaming component's own key (app/live_controls.py).
"""

from __future__ import annotations

import json
import math
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from inside_core.cache import give_back_freed_memory

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
    "compare_model": str, "sweep_var": str, "sweep_steps": int, "depth": int,
}
SESSION_KEY = "_inside_page"  # st.session_state[SESSION_KEY]: the session's `Session`
KEPT = 32  # entries of each per-session cache (a cine's frames of one slice, ACDC: up to ~30)


@dataclass
class Session:
    """What one browser session keeps besides its widget values (never shared between sessions)."""

    restored: bool = False  # the query string has seeded the widget values
    first_query: dict[str, str] = field(default_factory=dict)  # the session's first query string
    control_keys: list[str] = field(default_factory=list)  # URL keys of a dataset's own variables
    used: dict[str, set[str]] = field(default_factory=lambda: {"page": set(), "area": set()})
    group: str = "page"  # which run marks keys: the whole page, or the explorer area (a fragment) alone
    scope: Any = None  # what the explorer area's keys belong to: (dataset, data, model)
    shown: dict[str, Any] = field(default_factory=dict)  # model name -> the prediction the page drew last
    export: Any = None  # what the export buttons draw (app/export.ExportView): the view as last shown
    secondary: dict[str, Any] = field(default_factory=dict)  # figures kept while a control is dragged
    ahead: Any = None  # the thread making the pictures to scrub (app/ahead.py), if any
    caches: dict[str, OrderedDict] = field(default_factory=dict)  # name -> the newest KEPT entries
    # what the page made from an object (an Explorer's pictures, ranked channels), let go with the object
    derived: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    watched: bool = False  # registered to be released at disconnect (again after a reconnect)
    session_id: str = ""  # Streamlit's id of the browser session (its media files are kept under it)

    def remember(self, cache: str, key: Any, make: Callable[[], Any], fresh: Callable[[Any], bool] | None = None,
                 kept: int = KEPT, size: Callable[[Any], int] | None = None, max_bytes: int | None = None) -> Any:
        """`make()` once per `key` in the named cache (least recently used dropped past `kept`, and past
        `max_bytes` by `size(entry)`, the newest always kept); made again when `fresh(found)` says the kept one
        no longer fits."""
        entries = self.caches.setdefault(cache, OrderedDict())
        if key in entries and (fresh is None or fresh(entries[key])):
            entries.move_to_end(key)
            return entries[key]
        entries[key] = make()
        while len(entries) > kept or (size is not None and max_bytes is not None and len(entries) > 1
                                      and sum(size(e) for e in entries.values()) > max_bytes):
            entries.popitem(last=False)
        return entries[key]

    def made_from(self, owner: Any) -> dict[str, Any]:
        """The dict of what this session made from `owner` (e.g. an Explorer): it lives as long as `owner`
        does (weakly keyed: an Explorer let go from the cache takes its pictures along; its values must not
        hold `owner` itself, or it would never go)."""
        return self.derived.setdefault(owner, {})

    def release(self) -> None:
        """Drop what is only a cache (explorers, pictures, the predictions and figures last drawn): called
        when the browser disconnects. Streamlit keeps a disconnected session (its session_state) for a
        possible reconnect, up to 2 minutes and freed only when it is next looked at; these objects are
        the session's bulk (issue 23: 20 sessions left ~600 MB behind). A reconnect makes them again."""
        self.caches = {}
        self.derived = weakref.WeakKeyDictionary()
        self.shown = {}
        self.secondary = {}
        self.export = None
        self.watched = False
        if self.ahead is not None:  # its parts are the session's bulk too
            self.ahead.stop()
            self.ahead = None


def _release(state: Session) -> None:
    state.release()
    _drop_media(state.session_id)
    # what it held is freed now, but glibc keeps freed memory in its arenas: without this the server's RSS
    # stays near its peak (bench_sessions.py, 4 sessions closed: 243 MB stayed, 18 MB of it live; with it 38 MB)
    give_back_freed_memory()


def _drop_media(session_id: str) -> None:
    """Streamlit's copies of the session's pictures (st.image) and download callables go too: it drops them when
    it shuts a session down, which a session kept for a reconnect never is once it expires (streamlit 1.67: the
    storage forgets it without a shutdown), so they would stay for the server's life. A reconnect redraws them."""
    from streamlit import runtime

    if session_id and runtime.exists():
        media = runtime.get_instance().media_file_mgr
        media.clear_session_refs(session_id)
        media.remove_orphaned_files()


@st.cache_resource(scope="session", show_spinner=False, on_release=_release)
def _released_on_disconnect(identity: int, _state: Session) -> Session:
    """`_state`, kept in a session-scoped cache: Streamlit clears those when the session disconnects,
    handing each kept value to `on_release`."""
    return _state


def session() -> Session:
    """This browser session's `Session` (made on first use; its caches released when the session ends)."""
    found = st.session_state.get(SESSION_KEY)
    if not isinstance(found, Session):
        found = Session()
        st.session_state[SESSION_KEY] = found
    context = get_script_run_ctx(suppress_warning=True)
    if not found.watched and context is not None:  # not in bare mode (tests)
        found.session_id = context.session_id
        _released_on_disconnect(id(found), found)
        found.watched = True
    return found


def begin(group: str, scope: Any = None) -> None:
    """A run of the whole page ("page": forgets the sidebar's keys, it marks them again) or of the explorer
    area ("area", for `scope`: its keys are forgotten when the scope changes, e.g. another model)."""
    state = session()
    state.group = group
    if group == "page":
        state.used["page"] = set()
    elif scope != state.scope:
        state.used["area"] = set()
        state.scope = scope


def use(*keys: str) -> None:
    """Mark keys as used by this run: they go into the URL."""
    state = session()
    state.used.setdefault(state.group, set()).update(keys)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def restore_from_url() -> list[str]:
    """Seed session state from the query string, once per session. Returns the keys it could not read."""
    state = session()
    if state.restored:
        return []
    state.restored = True
    state.first_query = {key: st.query_params[key] for key in st.query_params}
    unreadable = []
    for key, parse in URL_KEYS.items():
        if key in st.query_params:
            try:
                st.session_state[key] = parse(st.query_params[key])
            except (TypeError, ValueError):
                unreadable.append(key)
    return unreadable


def url_controls(parsers: Mapping[str, Callable[[str], Any]]) -> None:
    """The model's controls go into the URL (and only they, of all controls): those that `URL_KEYS` does
    not name (the variables of a user's own dataset, keyed by their names) replace the last condition's,
    each seeded from the session's first query string if it was there and is not set yet. Per session:
    other sessions' datasets add nothing here."""
    use(*parsers)
    extra = [key for key in parsers if key not in URL_KEYS]
    session().control_keys = extra
    first = session().first_query
    for key in extra:
        if key in first and key not in st.session_state:
            try:
                st.session_state[key] = parsers[key](first[key])
            except (TypeError, ValueError):
                pass  # the control's default is used, as for any unreadable value


def current() -> dict[str, Any]:
    """The URL keys the page used in its last run that are set now, with their values, in a fixed order."""
    state = session()
    used = state.used["page"] | state.used["area"]
    keys = [key for key in [*URL_KEYS, *state.control_keys] if key in used]
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
    so URL-restored values and defaults never fight), and mark it used by this run. Returns the value."""
    use(key)
    if key not in st.session_state or (valid is not None and not _safe(valid, st.session_state[key])):
        st.session_state[key] = value
    return st.session_state[key]


def _safe(check: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(check(value))
    except (TypeError, ValueError):
        return False
