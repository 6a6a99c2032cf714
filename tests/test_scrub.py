"""Scrubbing (app/scrub.py): the pictures the page makes ahead for the browser to show while the pad or a
slider is dragged, and the display pictures they share with the page. AppTest plays the component's
requests (the browser tests drag the real one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.test_app import attention_means, healthy, last_prediction, live_args, move, page, slices

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node") or shutil.which("nodejs")


@pytest.fixture(autouse=True)
def pictures_made_ahead(monkeypatch):
    """These tests are about the pictures made ahead: held values decoded on the server's side (where the browser
    can decode, the page offers that instead once the model is exported: tests/test_decode_recipe_js.py,
    tests/test_browser_decoder.py)."""
    monkeypatch.setenv("INSIDE_DASHBOARD_DECODE", "server")
    monkeypatch.setenv("INSIDE_DASHBOARD_AHEAD", "0")  # each part made in the run that asks (app/ahead.py: below)


def ask(at, key: str, part: int):
    """The component's request for one part of the pictures, as it sends it when idle."""
    at.session_state["_live_controls.conditioning"] = {"ack": f"t:{part}", "seq": part, "final": True,
                                                      "frames": f"{key}#{part}"}
    at = healthy(at.run())
    return at, live_args(at)["frames"]


@pytest.mark.skipif(not (REPO / "checkpoints" / "clevr-seg-point-inside.safetensors").exists(),
                    reason="needs the shipped clevr-seg-point-inside checkpoint")
def test_scrub_frames_are_made_once_when_the_component_asks():
    """Asked for by the component when idle, one part at a time (coarse points first), sent in that run
    only, for the state they were made for (the shipped point model)."""
    at = healthy(page(model="clevr-seg-point-inside"))
    args = live_args(at)
    key, parts = args["frames_key"], args["frames_parts"]
    assert key and args["frames"] is None and parts == 4  # named, not sent until asked; 21 x 21 in 4 parts
    at, frames = ask(at, key, 0)
    assert (frames["key"], frames["part"], frames["parts"]) == (key, 0, 4)
    assert (frames["x"], frames["y"]) == ("loc_x", "loc_y")
    coarse = sorted({point[0] for point in frames["points"]})
    assert len(frames["points"]) == 121 and coarse == pytest.approx(np.linspace(-1, 1, 11))  # 11 x 11 first
    assert frames["base"] == {"radius": pytest.approx(0.35)}  # made for the radius shown
    strip = frames["strips"]["loc_x"]
    assert strip["at"] == {"loc_y": 0.0} and len(strip["values"]) == len(strip["images"]) == 41  # every step
    assert len(set(strip["images"])) > 1  # the predicted mask changes along the strip
    at = healthy(at.run())
    assert live_args(at)["frames"] is None  # sent once
    at, last = ask(at, key, 3)
    assert last["part"] == 3 and "strips" not in last and len(last["points"]) == 21 * 21 - 3 * 121
    assert not {(x, y) for x, y, *_ in last["points"]} & {(x, y) for x, y, *_ in frames["points"]}
    at = healthy(move(at, "loc_x", strip["values"][30]))  # a drag that ends on a slider step
    assert live_args(at)["image"] == strip["images"][30]  # the page's answer is the picture already shown
    cx, cy, rx, ry, gamma, marker = strip["attention"][30]  # and the Gaussians the browser drew ahead
    np.testing.assert_allclose(np.stack([cx, cy], -1), attention_means(at), atol=0.01)
    assert live_args(at)["attention"] == strip["attention"][30]  # drawn over the page's picture: the same
    grid = list(last_prediction(at).labels.shape[-2:])
    assert live_args(at)["overlay"]["grid"] == grid == [96, 96]  # on the model's grid (pixel k's centre at k)
    assert live_args(at)["caption"] == strip["captions"][30]  # and the Dice line
    assert strip["captions"][30].startswith("Dice against the ground truth: **")
    assert len({point[4] for point in frames["points"]}) > 3  # the Dice line changes over the pad
    assert len(rx) == len(ry) == len(gamma) == 8 and marker[2] is not None  # the point model's ring
    assert strip["attention"][0][0] != strip["attention"][40][0]  # the means move along the strip
    at = healthy(move(at, "radius", 0.6))
    assert live_args(at)["frames_key"] != key  # another radius: other pictures
    key = live_args(at)["frames_key"]
    at = healthy(at.toggle(key="show_gt").set_value(True).run())
    outlined = live_args(at)["frames_key"]
    assert outlined and outlined != key  # the ground truth drawn: other pictures, each with its point's outline
    at, frames = ask(at, outlined, 0)
    strip = frames["strips"]["loc_x"]
    at = healthy(move(at, "loc_x", strip["values"][12]))
    assert live_args(at)["image"] == strip["images"][12] and "ground truth outlined" in live_args(at)["title"]


def held(at, key: str, new, final: bool):
    """A move the component sent while the pointer is held (`final` False) or on release."""
    at.session_state[key] = new
    at.session_state["_live_controls.conditioning"] = {"ack": f"t:{new}", "seq": 1, "final": final, "frames": None}
    return healthy(at.run())


def test_while_held_the_component_alone_moves_the_gaussians():
    """During a drag the component draws the frame's Gaussians over its picture; the attention chart is sent
    unchanged (not redrawn) until the release, when it shows the same Gaussians. Unchanged means the same
    bytes: the same spec gives st.plotly_chart the same element id, which Streamlit's frontend keeps mounted
    with the same data (no plotly redraw); the details figure too."""
    def sent(at) -> dict[str, tuple[str, str]]:
        return {e.proto.id.rsplit("-", 1)[-1]: (e.proto.id, e.proto.spec) for e in at.get("plotly_chart")}

    at = healthy(page())
    chart_before, overlay_before, sent_before = attention_means(at), live_args(at)["attention"], sent(at)
    assert set(sent_before) == {"main_attention", "main_details"}
    at = held(at, "loc_x", 0.5, final=False)
    assert live_args(at)["attention"] != overlay_before  # the Gaussians over the picture moved
    np.testing.assert_allclose(attention_means(at), chart_before)  # the chart waits
    assert sent(at) == sent_before  # byte for byte: not redrawn
    at = held(at, "loc_x", 0.5, final=True)
    assert all(sent(at)[key][0] != sent_before[key][0] for key in sent_before)  # released: both new
    cx, cy = live_args(at)["attention"][:2]
    assert not np.allclose(attention_means(at), chart_before)  # released: the chart follows, to the same place
    np.testing.assert_allclose(np.stack([cx, cy], -1), attention_means(at), atol=0.01)


def test_acdc_scrub_frames_cover_every_slice_and_phase_step():
    """ACDC: the pictures cover the pad (every slice, every phase step), each point with its own cine frame,
    drawn as the page draws it: a drag released on any of them shows the page's own picture (the same bytes)."""
    at = healthy(page(dataset="acdc"))
    args = live_args(at)
    key, parts = args["frames_key"], args["frames_parts"]
    stack = slices(at)
    here = live_args(at)["values"]["slice"]
    assert key and parts == len(stack)  # a part per slice: its row of 21 phase steps
    order = []
    points, all_points = [], []
    for part in range(parts):
        at, frames = ask(at, key, part)
        all_points += frames["points"]
        assert frames["part"] == part and (frames["x"], frames["y"]) == ("phase", "slice") and frames["exact"]
        assert "strips" not in frames  # every phase step is a lattice point: the rows are the strips
        assert len({p[1] for p in frames["points"]}) == 1 and [p[0] for p in frames["points"]] == sorted(
            p[0] for p in frames["points"]) and len(frames["points"]) == 21  # a row: every phase step of one slice
        order.append(stack.index(frames["points"][0][1]))
        if part == 0:  # first the row through the page's point
            assert [p[1] for p in frames["points"]] == [here] * 21
        points += [(*point[:3], point[4]) for point in frames["points"]]
    distance = [abs(k - stack.index(here)) for k in order]
    assert distance == sorted(distance)  # then the rows nearer the page's slice first
    assert sorted({y for _, y, _, _ in points}) == sorted(stack)
    assert sorted({x for x, _, _, _ in points}) == pytest.approx(np.linspace(0, 1, 21))
    assert len(points) == 21 * len(stack) and len({src for _, _, src, _ in points}) > len(stack)  # phase matters
    lines = {x: line for x, _, _, line in points}  # the Dice line where the frame is annotated (ED, ES) only
    assert lines[0.0].startswith("Dice against the ground truth") and "LV" in lines[1.0]
    assert lines[0.5] == "No ground truth for this image."
    gaussians = {(p[0], p[1]): p[3] for p in all_points}
    for phase, other in ((0.4, here), (1.0, stack[0])):  # the page's answer is the picture already shown
        x, src, line = next((x, s, t) for x, y, s, t in points if x == pytest.approx(phase) and y == other)
        at = healthy(move(at, "phase", phase))
        if other != here:
            at = healthy(move(at, "slice", other))
        assert live_args(at)["image"] == src and live_args(at)["caption"] == line  # the Dice line
        assert live_args(at)["attention"] == gaussians[(x, other)]  # and the Gaussians drawn over it
    assert live_args(at)["frames_key"] == key  # the same pictures serve every phase and slice of this sample


def test_scrubbing_can_be_turned_off(monkeypatch):
    """$INSIDE_DASHBOARD_SCRUB=0 (a remote deployment): no pictures made ahead; the controls still stream."""
    monkeypatch.setenv("INSIDE_DASHBOARD_SCRUB", "0")
    at = healthy(page())
    args = live_args(at)
    assert args["frames_key"] is None and args["frames_parts"] == 0 and args["pad"]["x"] == "loc_x"


def test_display_picture_does_not_depend_on_who_asks_first(monkeypatch):
    """The attention's background asks for the display picture without the view's image; asked first, it
    must not leave the mask drawn over the model's (smaller) input instead of the view's own image."""
    import torch

    from app import loading

    state: dict = {}
    monkeypatch.setattr(loading.st, "session_state", state)

    class FakeExplorer:
        image_size = (96, 96)
        image = torch.zeros(3, 96, 96)

    explorer, view_image = FakeExplorer(), torch.ones(3, 384, 384)
    background_first = loading.background(explorer)[0]
    picture = loading.display_base(explorer, view_image, 400)
    assert picture.min() == 255  # the view's own (white) image, not the model's (black) input
    assert loading.background(explorer)[0] != background_first  # the background follows the better picture


def test_pictures_that_cannot_be_made_leave_one_line_and_the_page(monkeypatch):
    """A file that fails while the pictures are made (say a cine frame unreadable): one line, no traceback,
    the controls still stream."""
    from app import scrub
    from inside_core.data import DataError

    at = healthy(page(dataset="acdc"))
    key = live_args(at)["frames_key"]

    def failing(*args, **kwargs):
        raise DataError("patient003_4d.nii.gz", "the header says 30 frames, the file holds 12")

    monkeypatch.setattr(scrub.loading, "display_picture", failing)
    at, frames = ask(at, key, 0)
    assert frames is None and live_args(at)["pad"]["x"] == "phase"
    said = [c.value for c in at.caption if "Scrubbing is off" in c.value]
    assert len(said) == 1 and "patient003" in said[0] and "30 frames" in said[0]


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install -y nodejs)")
def test_labels_hash_is_the_same_in_python_and_in_the_browser():
    """app/frame.labels_hash and app/decode_core.js `labelsHash` agree on the same labels (the browser keeps its
    decoded mask when the page's frame carries its hash), and one changed pixel changes the hash."""
    import numpy as np

    from app.frame import labels_hash

    rng = np.random.default_rng(21)
    maps = [rng.integers(0, 4, size=(400, 400)), np.zeros((7, 5), int), rng.integers(0, 256, size=(3, 11))]
    changed = maps[0].copy()
    changed[399, 399] = (changed[399, 399] + 1) % 4
    moved = np.roll(maps[0], 1, axis=1)
    maps += [changed, moved]
    script = ("const core = require(process.argv[1]); let input = '';"
              "process.stdin.on('data', (c) => { input += c; });"
              "process.stdin.on('end', () => { const out = JSON.parse(input).map(([h, w, l]) =>"
              " core.labelsHash(Uint8Array.from(l), h, w)); process.stdout.write(JSON.stringify(out)); });")
    job = json.dumps([[m.shape[0], m.shape[1], m.ravel().tolist()] for m in maps])
    result = subprocess.run([NODE, "-e", script, str(REPO / "app" / "decode_core.js")], input=job,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [labels_hash(m) for m in maps]
    hashes = [labels_hash(m) for m in maps]
    assert len(set(hashes)) == len(hashes)  # the changed pixel, the shift, the sizes: all different


def test_the_page_s_frame_carries_the_hash_of_its_labels_unless_the_ground_truth_is_outlined():
    """The picture the component shows is drawn from these labels alone (no ground truth outlined): its args carry
    their hash, so a mask the browser decoded with the same labels is kept; with the outline, none (always painted)."""
    import base64
    import io

    from PIL import Image

    from app import plots
    from app.frame import labels_hash

    at = healthy(page(query={"loc_x": "-0.5", "loc_y": "-0.5"}))
    prediction = last_prediction(at)
    shown = Image.open(io.BytesIO(base64.b64decode(live_args(at)["image"].split(",", 1)[1])))
    labels = plots.smooth_labels(prediction.probabilities, (shown.height, shown.width))
    assert live_args(at)["labels_hash"] == labels_hash(labels)
    at = healthy(move(at, "loc_x", 0.5))
    moved = live_args(at)["labels_hash"]
    assert moved is not None and moved != labels_hash(labels)  # another place: another mask
    at.session_state["show_gt"] = True
    at = healthy(at.run())
    assert live_args(at)["labels_hash"] is None


def test_a_release_is_answered_by_the_controls_alone_then_the_browser_asks_for_the_area(monkeypatch):
    """A final value reruns the controls' own fragment (no keyed rerun: its exact frame first), whose answer tells
    the browser to ask for the rest (`area`); that request reruns the explorer area. Held values, requests for
    pictures or for the decoder's part, and the area's own run do not ask for the area."""
    from types import SimpleNamespace

    from app import live_controls
    from app.live_controls import STATE_PREFIX, answers_alone

    reruns: list = []
    state: dict = {}
    fake = SimpleNamespace(session_state=state, rerun=lambda scope: reruns.append(scope))
    monkeypatch.setattr(live_controls, "st", fake)
    point = [SimpleNamespace(key="loc_x", kind="slider", low=-1.0, high=1.0, step=0.05)]

    def send(**message):
        state["conditioning"] = {"value": {"token": f"t:{len(reruns)}", "seq": 1, "values": {"loc_x": 0.5},
                                           "frames": None, **message}}
        live_controls._on_change("conditioning", tuple(point), {}, release="explorer_area")
        return answers_alone("conditioning", "explorer_area")

    assert not send(final=False) and reruns == []  # held: the controls' fragment, nothing more to ask
    assert send(final=True) and reruns == []  # the release: the controls' fragment answers, then asks for the area
    assert not answers_alone("conditioning", None)  # controls drawn in the area itself (Compare, Sweep)
    assert not send(final=True, area=True) and reruns == ["explorer_area"]  # the area's request reruns the area
    assert not send(final=True, frames="K#1") and not send(final=True, decoder="K#0")  # requests: no area after
    assert reruns == ["explorer_area"] and state[STATE_PREFIX + "conditioning"]["ack"].startswith("t:")


def test_parts_are_made_by_the_session_s_thread_and_shipped_only_once_made(monkeypatch):
    """With app/ahead.py on (the default): opening the page starts the session's thread; the component is told how
    many parts are made (`frames_ready`); asking for one not made yet answers at once without it (the run does not
    make it); once made, the run ships it, the same part as made in the run (the inline path) would be."""
    import time

    monkeypatch.setenv("INSIDE_DASHBOARD_AHEAD", "1")
    at = healthy(page(dataset="acdc"))
    args = live_args(at)
    key, parts = args["frames_key"], args["frames_parts"]
    assert key and parts >= 2 and 0 <= args["frames_ready"] <= parts
    from tests.test_app import page_session

    ahead = page_session(at).ahead
    assert ahead is not None and ahead.key == key and ahead.thread.name == f"ahead-{key}"
    # not a daemon (a daemon in torch's work when the interpreter exits aborts the process: pytest's exit status 134)
    assert not ahead.thread.daemon
    assert ahead.eager  # ACDC's parts are the page's own frames: made while a control is held too
    last = parts - 1
    if ahead.ready() <= last:  # not made yet: the answer comes without it, and says how many are
        start = time.perf_counter()
        at, part = ask(at, key, last)
        assert part is None and live_args(at)["frames_ready"] < parts and time.perf_counter() - start < 5
    ahead.thread.join(timeout=120)
    assert ahead.ready() == parts and ahead.failed is None
    at, part = ask(at, key, last)
    assert part is not None and part["part"] == last and part["key"] == key and live_args(at)["frames_ready"] == parts
    monkeypatch.setenv("INSIDE_DASHBOARD_AHEAD", "0")  # the inline path: the same part, made in the run
    at, inline = ask(at, key, last)
    assert inline is not None and inline["points"] == part["points"]


def test_the_thread_waits_while_a_control_is_held_unless_its_parts_are_the_page_s_own_frames():
    """app/ahead.py: held, the page's answers come first (the thread waits after its current part), except where
    each part is frames the page would answer with (`Scrub.eager`: ACDC's lattice of every value)."""
    import time

    from app.ahead import Ahead
    from app.protocol import Scrub

    def make(part: int) -> dict:
        time.sleep(0.05)
        return {"key": "K", "part": part, "parts": 40, "points": []}

    for eager in (False, True):
        ahead = Ahead(Scrub("K", 40, make, eager=eager))
        ahead.hold(True)
        made = ahead.ready()
        time.sleep(0.6)
        if eager:
            assert ahead.ready() >= made + 5  # went on
        else:
            assert ahead.ready() <= made + 1  # waited after its current part
        ahead.hold(False)
        ahead.thread.join(timeout=10)
        assert ahead.ready() == 40


def test_a_held_answer_carries_a_small_part_made_since_and_each_part_once():
    """app/ahead.py: the component asks for parts only when idle, so a drag begun before the first part came would
    get none; a held value's answer carries the first made part not shipped yet, if small (a big one would hold
    that answer up), and a part shipped either way is not shipped again by this route."""
    from app.ahead import PUSH_BYTES, Ahead
    from app.protocol import Scrub

    sizes = [PUSH_BYTES // 2, PUSH_BYTES * 2, 10]

    def make(part: int) -> dict:
        return {"key": "K", "part": part, "parts": 3, "points": [[0, part, "x" * sizes[part], None, None]]}

    ahead = Ahead(Scrub("K", 3, make))
    ahead.thread.join(timeout=10)
    assert ahead.ready() == 3
    assert ahead.news()["part"] == 0 and ahead.news() is None  # part 1 (too big) waits to be asked for
    assert ahead.take(1)["part"] == 1 and ahead.news()["part"] == 2 and ahead.news() is None
    fresh = Ahead(Scrub("K", 3, make))
    fresh.thread.join(timeout=10)
    assert fresh.take(0)["part"] == 0 and fresh.news() is None  # asked for already: not sent again


DICE_LINES = r"""
const core = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const job = JSON.parse(input);
  process.stdout.write(JSON.stringify([job.cases.map(([words, n, labels, runs]) =>
    core.diceLine(Uint8Array.from(labels), core.labelsOfRuns(runs, n), words)), job.means.map(core.numpyMean)]));
});
"""


def page_dice_line(labels: np.ndarray, truth: np.ndarray, num_classes: int) -> str:
    """app/frame.dice_line for these labels (the prediction's, at the model's grid) and truth."""
    from types import SimpleNamespace

    from app.frame import dice_line
    from inside_core.explorer import Explorer, Prediction

    h, w = labels.shape
    explorer = SimpleNamespace(image_size=(h, w), image=np.zeros((1, h, w)), mask=None)
    explorer.dice_per_class = lambda prediction, mask: Explorer.dice_per_class(explorer, prediction, mask)
    return dice_line(explorer, Prediction(np.zeros((num_classes, h, w), np.float32), labels), truth)


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install -y nodejs)")
def test_the_browser_writes_the_dice_line_exactly_as_the_page_does():
    """app/decode_core.js `diceLine` (on the truth as the part sends it: runs at the model's grid, the words of
    `line_words`) against app/frame.dice_line on random label maps: the same text, exact ties of the rounding
    (Dice 0.125, 0.375, a mean of 0.0625: Python rounds them to even), empty truths and predictions, one label and
    up to eleven (numpy's pairwise mean past seven)."""
    from app.scrub import line_words, run_lengths

    rng = np.random.default_rng(72)
    cases = []
    for n in range(120):
        num_classes = [1, 2, 4, 12][n % 4]
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        labels, truth = (rng.integers(0, max(num_classes, 2), size=(h, w)) * (rng.random() > 0.15) for _ in range(2))
        cases.append((labels, truth, num_classes))
    # ties: 2 * 1 / 16 = 0.125 and 2 * 3 / 16 = 0.375 (each to 2 decimals), 2 * 1 / 32 = 0.0625 (3 decimals)
    for truth_pixels, num_classes in ((15, 1), (31, 1), (15, 3)):
        labels, truth = np.zeros(32, int), np.zeros(32, int)
        labels[0], truth[:truth_pixels] = 1, 1
        if num_classes == 3:
            labels[16:19], truth[16:29] = 2, 2
        cases.append((labels.reshape(4, 8), truth.reshape(4, 8), num_classes))
    expected = [page_dice_line(labels, truth, k) for labels, truth, k in cases]
    # the mean, bit for bit: numpy's pairwise sum differs from a plain one in the last bits from 8 numbers on
    means = [(rng.random(int(n)) * 10.0 ** rng.integers(-3, 4)).tolist() for n in rng.integers(1, 300, size=200)]
    job = {"cases": [[line_words(k), labels.size, labels.ravel().tolist(), run_lengths(truth)]
                     for labels, truth, k in cases], "means": means}
    result = subprocess.run([NODE, "-e", DICE_LINES, str(REPO / "app" / "decode_core.js")], input=json.dumps(job),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines, browser_means = json.loads(result.stdout)
    assert lines == expected
    assert browser_means == [float(np.mean(values)) for values in means]
    assert any(float(np.mean(v)) != sum(v) / len(v) for v in means)  # the order matters here
    assert "**0.125**" in expected[-3] and "**0.062**" in expected[-2], expected[-3:]
    assert " 0.12, " in expected[-1] and expected[-1].endswith(" 0.38)"), expected[-1]
    assert any("empty here" in line for line in expected) and any(line.count(",") >= 9 for line in expected)


@pytest.mark.parametrize("name, extra", [("quadrant", {}), ("point", {"radius": 0.35})])
def test_the_decoder_part_s_truth_is_the_page_s_for_every_value_of_the_grid(name, extra):
    """app/scrub.truth_part on the bundled CLEVR-Seg: for grid values across the pad, the map its index names (runs
    at the model's grid) is the page's ground truth for them (app/place.view_at, as app/live_area.py's frame, at the
    model's grid as app/frame.dice_line prepares it); the maps are few (values share a truth)."""
    import base64

    from app import loading
    from app.controls import ControlValues
    from app.place import Place, view_at
    from app.protocol import TRUTH_NONE
    from app.scrub import truth_part
    from inside_core.conditions import get_condition
    from inside_core.explorer import prepare_mask

    source = loading.load_source("clevr-seg", str(loading.default_data_dir("clevr-seg")), "test")
    condition = get_condition(name)
    values = {"loc_x": 0.1, "loc_y": -0.2, **extra}
    controls = ControlValues(values, dict(values), "", condition, {}, condition.image_point())
    size = (48, 64)
    for index in (0, 7):
        place = Place(condition, source, index, True, None)
        part = truth_part(place, controls, size, 1)
        grid = np.frombuffer(base64.b64decode(part["index"]), np.uint8).reshape(41, 41)
        assert 2 <= len(part["maps"]) < 41 and TRUTH_NONE not in grid and part["labels"] == [1]
        maps = []
        for runs in part["maps"]:
            label, count = np.array(runs[0::2]), np.array(runs[1::2])
            maps.append(np.repeat(label, count).reshape(size))
        seen = set()
        for i, j in [(0, 0), (40, 40), (20, 20), (21, 19), (11, 30), (33, 7), (5, 22), (27, 27), (14, 3)]:
            at = {**values, "loc_x": round(-1 + 0.05 * i, 2), "loc_y": round(-1 + 0.05 * j, 2)}
            page = prepare_mask(view_at(place, at).ground_truth, size)
            assert np.array_equal(maps[grid[j, i]], page), (index, at)
            seen.add(int(grid[j, i]))
        assert len(seen) >= 2  # the samples met more than one truth


def test_an_image_without_ground_truth_gives_every_grid_value_the_page_s_no_truth_line():
    """An upload has no ground truth: every value's index is TRUTH_NONE, no maps, and the words are the frame's."""
    import base64
    import io

    from PIL import Image

    from app.controls import ControlValues
    from app.frame import NO_GROUND_TRUTH
    from app.place import Place
    from app.protocol import TRUTH_NONE
    from app.scrub import truth_part
    from app.sources import UploadSource
    from inside_core.conditions import get_condition

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 40, 200)).save(buffer, format="PNG")
    condition = get_condition("quadrant")
    values = {"loc_x": 0.0, "loc_y": 0.0}
    controls = ControlValues(values, dict(values), "", condition, {}, condition.image_point())
    part = truth_part(Place(condition, UploadSource("mine.png", buffer.getvalue(), "image"), 0), controls, (24, 32), 1)
    assert set(base64.b64decode(part["index"])) == {TRUTH_NONE} and part["maps"] == []
    assert part["none"] == NO_GROUND_TRUTH


def test_a_view_that_cannot_be_read_sends_no_truth_and_the_page_s_frame_says_why():
    """A bad case file (SourceError while reading the view) leaves the part without truth (the browser's line then
    says the Dice line comes with the page's frame) instead of failing the part."""
    from app.controls import ControlValues
    from app.place import Place
    from app.scrub import truth_or_none
    from app.sources import SourceError
    from inside_core.conditions import get_condition

    class Broken:
        offers = frozenset({"stack"})

        def view(self, *args, **kwargs):
            raise SourceError("case_007.nii.gz: not a NIfTI file")

    condition = get_condition("quadrant")
    values = {"loc_x": 0.0, "loc_y": 0.0}
    controls = ControlValues(values, dict(values), "", condition, {}, condition.image_point())
    assert truth_or_none(Place(condition, Broken(), 0), controls, (8, 8), 1) is None
