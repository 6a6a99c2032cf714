"""The explorer view as frames (issue 21): one recipe for every picture, the bugs met on the way (each
with a test), and the shape of app/ (no import circle, no file over 400 lines, the protocol in one
place, nothing reaching into another frame through the parent window)."""

from __future__ import annotations

import ast
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import test_app
from tests.test_app import _array, attention_means, charts, healthy, live_args, page, page_session, texts

checkpoints, test_models = test_app.checkpoints, test_app.test_models  # the page's fixtures: small random models

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"


# ------------------------------------------------------------------------------------------- bugs


def test_compare_offers_only_models_that_read_z_alike(test_models):
    """A point model's radius means nothing to a quadrant model: choosing it raised "quadrant has no control
    'radius'" with a traceback and the sliders vanished. Now it is not offered, and a link naming it falls
    back to a partner that reads z alike."""
    at = healthy(page(model="clevr-seg-quadrant-inside", view="Compare"))
    options = at.selectbox(key="compare_model").options
    assert "clevr-seg-point-inside" not in options and "clevr-seg-quadrant-inside" not in options
    assert options[0] == "clevr-seg-quadrant-film"
    at = healthy(page(query={"model": "clevr-seg-quadrant-inside", "view": "Compare",
                             "compare_model": "clevr-seg-point-inside"}))
    assert at.selectbox(key="compare_model").value == "clevr-seg-quadrant-film"
    assert live_args(at)["controls"]  # the sliders are there


def test_compare_with_no_partner_says_so_instead_of_comparing_the_model_with_itself(test_models):
    """The only model of its condition (here the point model; on a user's own folder, usually the one
    model trained on it): Compare said nothing and showed the model beside itself."""
    at = healthy(page(model="clevr-seg-point-inside", view="Compare"))
    assert "compare_model" not in [s.key for s in at.selectbox]
    assert "nothing to compare it with" in texts(at)
    assert len(at.subheader) == 0
    assert live_args(at)["controls"]  # the controls still stream


def test_compare_on_your_own_data_never_compares_the_model_with_itself():
    """The bundled lesions example ships one model: Compare says there is nothing to compare with."""
    at = healthy(page(dataset="nnunet", view="Compare"))
    assert at.selectbox(key="model").value == "lesions-inside"
    names = [h.value for h in at.subheader]
    assert len(names) == len(set(names))
    assert "nothing to compare it with" in texts(at)


@pytest.mark.parametrize("choice, drawn", [("responsive", 8), ("strongest", 8), ("all", 64), ("5", 1)])
def test_export_draws_the_channels_on_screen(test_models, choice, drawn):
    """The export drew the "largest |1+γ|·mass" channels while the page showed "the 8 that respond most to
    z": a paper figure of something the user never saw. Now it draws the page's channels and says which."""
    at = healthy(page(model="clevr-seg-quadrant-inside", channel=choice))
    spec = next(t for t in charts(at)["main_attention"]["data"] if t.get("name") == "μ")
    on_screen = sorted(int(c) for c in _array(spec["customdata"]).reshape(-1, 7)[:, 0])
    assert len(on_screen) == drawn
    export = page_session(at).export
    if choice == "5":
        assert export.channel == 5 and export.channels is None
    else:
        assert sorted(export.channels) == on_screen
    from app.export import export_bytes

    svg = export_bytes(export, "svg").decode()
    said = html.unescape(" ".join(re.findall(r"<text[^>]*>([^<]*)<", svg)))  # the caption, its lines joined
    words = {"responsive": "whose μ, σ move most", "strongest": "largest |1+γ|·mass", "all": "all 64 channels",
             "5": "channel 5 of 64"}[choice]
    assert words in said, f"the figure's caption does not say {words!r}: {said}"


def test_a_held_move_leaves_the_link_to_the_release(test_models):
    """While a control is held the link is not rewritten (each rewrite was a browser history entry and a
    message more per move); the release's run writes it."""
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    assert at.query_params["loc_x"] == "-0.5"
    for value, final in ((0.25, False), (0.5, False)):
        at.session_state["loc_x"] = value
        at.session_state["_live_controls.conditioning"] = {"ack": f"t:{value}", "seq": 1, "final": final}
        at = healthy(at.run())
        assert at.query_params["loc_x"] == "-0.5"  # held: the page moved, the link waits
        assert page_session(at).export.values["loc_x"] == value
    at.session_state["_live_controls.conditioning"] = {"ack": "t:end", "seq": 2, "final": True}
    at = healthy(at.run())
    assert at.query_params["loc_x"] == "0.5"


def test_export_of_compare_draws_each_side_as_shown(test_models):
    at = healthy(page(model="clevr-seg-quadrant-inside", view="Compare", loc_x=0.25))
    export = page_session(at).export
    name, _, _, channels, note = export.compare
    assert name == "clevr-seg-quadrant-film" and channels is None  # FiLM: no ellipses
    assert export.channels is not None and len(export.channels) == 8 and "move most" in export.channels_note


def test_links_hold_only_the_keys_of_what_is_shown(test_models):
    """A link made after switching dataset carried the other dataset's control values (loc_x on ACDC)."""
    at = healthy(page(model="clevr-seg-quadrant-inside"))
    assert at.query_params["loc_x"] == "-0.5"
    at = healthy(at.selectbox(key="dataset").set_value("acdc").run())
    query = dict(at.query_params)
    assert query["dataset"] == "acdc" and "phase" in query and "slice" in query
    assert not {"loc_x", "loc_y", "radius", "compare_model", "data_dir", "model_path"} & set(query), query
    at = healthy(at.selectbox(key="dataset").set_value("clevr-seg").run())
    assert at.query_params["loc_x"] == "-0.5"  # the session kept it: going back finds it
    assert "phase" not in at.query_params


def test_axes_with_tick_labels_have_room_for_them(test_models):
    """Plotly's narrow margins clipped "−1" to "1" on the sweep and the FiLM / Guide Me charts."""
    seen = 0
    for model, view in [("clevr-seg-quadrant-film", "Explore"), ("clevr-seg-quadrant-guideme", "Explore"),
                        ("clevr-seg-quadrant-inside", "Sweep"), ("clevr-seg-quadrant-inside", "Explore")]:
        at = healthy(page(model=model, view=view))
        for name, figure in charts(at).items():
            for axis_name, axis in figure["layout"].items():
                if re.fullmatch(r"[xy]axis\d*", axis_name) and axis.get("showticklabels", True):
                    assert axis.get("automargin") is True, (model, view, name, axis_name)
                    seen += 1
    assert seen >= 6


# ------------------------------------------------------------------------------------------ frames


def test_one_recipe_gives_the_same_bytes():
    """`make_frame` for the page's answer and `make_frames` (the pictures made ahead, in batches) give the
    same frame for the same values; another value, another picture; the truth outline only on request."""
    import torch

    from app.frame import FrameOptions, make_frame, make_frames
    from app.plots import upscaled_rgb
    from inside_core.conditions import get_condition
    from inside_core.explorer import Explorer
    from inside_core.networks import build_model

    torch.manual_seed(3)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=3, image_size=(48, 48)).eval()
    image = torch.rand(3, 48, 48)
    explorer, condition = Explorer(model, image), get_condition("point")
    base = upscaled_rgb(image, (96, 96))
    truth = np.zeros((48, 48), np.int64)
    truth[10:20, 10:20] = 1
    options = FrameOptions(outline_truth=True, channels=(0, 3, 5))
    values = [{"loc_x": x, "loc_y": 0.1, "radius": 0.4} for x in (-0.5, 0.0, 0.5)]
    batch = make_frames(explorer, condition, values, [truth] * 3, base, options)
    for z_values, made in zip(values, batch, strict=True):
        page_frame = make_frame(explorer, explorer.update(condition.encode(**z_values)), condition, z_values, truth,
                                base, options)
        assert page_frame.jpeg == made.jpeg and page_frame.dice == made.dice and page_frame.gaussians == made.gaussians
    assert len({json.dumps(frame.gaussians) for frame in batch}) == 3  # the Gaussians follow z
    assert batch[0].dice.startswith("Dice against the ground truth: **") and "outlined" in batch[0].caption
    cx, cy, rx, ry, gamma, marker = batch[0].gaussians
    assert len(cx) == 3 and marker[2] is not None  # the point model's ring
    plain = make_frame(explorer, batch[0].prediction, condition, values[0], truth, base, FrameOptions())
    assert plain.jpeg != batch[0].jpeg and plain.gaussians is None and plain.dice == batch[0].dice


def test_frame_recipe_needs_no_streamlit():
    code = "import sys, app.frame, app.protocol; print('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "False"


def test_page_answer_is_the_frame_recipe(test_models):
    """The picture the component shows is `make_frame`'s, with the page's own options."""
    from app import page_state
    from app.frame import FrameOptions, make_frame
    from inside_core.conditions import get_condition

    at = healthy(page(model="clevr-seg-point-inside", show_gt=True))
    export = page_session(at).export
    state = at.session_state[page_state.SESSION_KEY]
    base = state.derived[export.explorer]["display_base"][0]  # the picture made from the page's Explorer
    frame = make_frame(export.explorer, export.prediction, get_condition("point"), export.values, export.mask, base,
                       FrameOptions(outline_truth=True))
    assert live_args(at)["image"] == frame.data_uri and live_args(at)["caption"] == frame.line
    assert attention_means(at).shape == (8, 2)


# ------------------------------------------------------------------------------------- app's shape


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "app":
                found |= {f"app.{alias.name}" for alias in node.names}
            elif node.module.startswith("app."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("app.")}
    return found


def test_app_has_no_import_circle():
    graph = {f"app.{path.stem}": _imports(path) & {f"app.{p.stem}" for p in APP.glob("*.py")}
             for path in APP.glob("*.py") if path.stem != "__init__"}

    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in graph.get(start, ()):
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    circles = [name for name in graph if name in reach(name, set())]
    assert not circles, {name: sorted(graph[name]) for name in circles}


def test_no_file_under_app_is_over_400_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in APP.iterdir() if path.is_file()
             and path.suffix in (".py", ".js", ".html")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_private_session_keys_live_in_page_state_only():
    """One owner of the session's state: no module but app/page_state.py (and the streaming component's
    own key, app/live_controls.py) reads or writes a private st.session_state key."""
    offenders = {}
    for path in APP.glob("*.py"):
        if path.name in ("page_state.py", "live_controls.py"):
            continue
        hits = re.findall(r"session_state(?:\.setdefault\(|\.get\(|\[)\s*[\"']_", path.read_text())
        if hits:
            offenders[path.name] = len(hits)
    assert offenders == {}


def test_no_dataset_name_is_compared_outside_the_registry():
    pattern = re.compile(r"""(==|!=)\s*["'](clevr-seg|acdc|nnunet)["']|["'](clevr-seg|acdc|nnunet)["']\s*(==|!=)""")
    offenders = [f"{path.name}:{n}" for path in APP.glob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_dataset_registry_knows_each_kind():
    from inside_core.data.registry import DATASETS, card_dataset, dataset_kind

    assert list(DATASETS) == ["clevr-seg", "acdc", "nnunet", "cubes3d"]
    assert dataset_kind("cubes3d").volumes and not dataset_kind("acdc").volumes
    assert card_dataset({}) == "clevr-seg" and dataset_kind(None).name == "clevr-seg"
    assert dataset_kind("acdc").spacing and dataset_kind("nnunet").variables
    assert dataset_kind("nnunet").untrained is None  # only a model defines z for a user's variables
    assert dataset_kind("acdc").source_class().__name__ == "AcdcSource"
    assert dataset_kind("nnunet").source_class().__name__ == "TableSource"
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        dataset_kind("mnist")
    assert json.dumps(dataset_kind("clevr-seg").untrained)  # plain data: a card can be built from it
