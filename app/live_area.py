"""The part of the Explore view that a held control reruns: the streaming controls and the frame they show.

The explorer area (app/main.py) is a fragment keyed `AREA`; in the Explore view with a pad the streaming
component is drawn inside a fragment of its own nested in it (`live_slot`). A value sent while the pointer
is held reruns this inner fragment alone: it decodes the new values (`decoded`, the area's own recipe) and
answers with the component's one element (the picture with its mask, its Gaussians and Dice line); the
charts, captions and pickers are not sent again. A final value (the release, a key press) reruns the area
(`live_controls(..., release=AREA)`), which draws everything for it and hands this fragment the frame it
made. A request for pictures to scrub reruns this fragment alone too, so the part is made without the rest
of the page being marked stale meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import loading, page_state
from app.controls import ControlValues, draw_live_controls, reread
from app.frame import FrameOptions, overlay_spec
from app.place import Place, view_at
from app.scrub import browser_decoder, scrub_frames
from app.sources import SourceError
from app.views import MaskPanel, mask_panel
from inside_core.data import DataError

AREA = "explorer_area"  # the explorer area's fragment key: a final value reruns it (app/main.py)
VIEW_ERRORS = (DataError, SourceError, OSError)  # a bad case file in the user's folder: one line (issue 23)


@dataclass
class Decoded:
    """One decode of the page's values: the view (image, ground truth, notes), its Explorer and prediction."""

    view: Any
    explorer: Any
    prediction: Any


@dataclass
class Shown:
    """What the area drew its frame with: the values, whether held, the mask panel, and its decode."""

    controls: ControlValues
    mask: MaskPanel
    decoded: Decoded


def decoded(entry, model, place: Place, controls: ControlValues) -> Decoded:
    """The view for these values, its Explorer (encoded once per image) and the prediction for their z; the
    page's record of what it shows (`Session.shown`) follows. Raises VIEW_ERRORS on a bad case file."""
    view = view_at(place, controls.values)
    explorer = loading.explorer_for(entry, model, view.key, view.image)
    loading.display_base(explorer, view.image)  # the view's own picture under the mask and the attention
    prediction = explorer.update(place.condition.encode(**controls.z_values))
    shown = page_state.session().shown
    shown.pop(entry.name, None)
    shown[entry.name] = prediction  # what the page shows, by model (tests read it)
    return Decoded(view, explorer, prediction)


def error_line(error: Exception) -> str:
    return loading.plain(str(error).splitlines()[0] if str(error) else type(error).__name__)


@st.fragment
def live_slot(entry, model, place: Place, options: FrameOptions, shown: Shown) -> None:
    """The streaming controls and their frame. Called by the area with the frame it made (`shown`); rerun
    alone for a held value (or a request for pictures to scrub): the values are then the state's, and a frame
    is made for them when they differ from the area's. `options`: the area's (kept while a control is held)."""
    controls = reread(shown.controls)
    if controls.values != shown.controls.values:
        try:
            found = decoded(entry, model, place, controls)
        except VIEW_ERRORS as error:
            st.error(error_line(error))
            return
        mask = mask_panel(found.explorer, found.prediction, place.condition, controls.z_values,
                          found.view.ground_truth, options.outline_truth, image=found.view.image, options=options)
        shown = Shown(controls, mask, found)
    explorer, image = shown.decoded.explorer, shown.decoded.view.image
    # held values decoded in the browser where it can (app/scrub.py): then no pictures are made ahead
    decoder = browser_decoder(explorer, controls, options, image, place, str(entry.path), str(shown.decoded.view.key))
    ready = decoder is not None and decoder.offer["ready"]
    scrub = None if ready else scrub_frames(explorer, controls, options, image=image, place=place)
    draw_live_controls(controls, None, image=shown.mask.data_uri, frames=scrub, image_caption=shown.mask.frame.line,
                       image_title=shown.mask.caption, attention=shown.mask.frame.gaussians,
                       overlay=overlay_spec(explorer.image_size), release=AREA, decoder=decoder,
                       labels_hash=shown.mask.frame.labels)
