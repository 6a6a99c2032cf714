"""Publication figures: every kind to PDF/SVG/PNG, text in vector files, 300 dpi PNGs, byte-identical
output for the same inputs, figures that change with the conditioning, and the `inside figures` CLI.

Small random models and a tiny generated CLEVR-Seg set keep this fast; no trained weights needed.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from inside_core import build_model
from inside_core import figures as F
from inside_core.checkpoints import save_checkpoint
from inside_core.cli import main as cli_main
from inside_core.conditions import TableCondition, acdc_condition, one_hot, point_condition
from inside_core.explorer import Explorer

SIZE = 48  # a multiple of 8 (U-Net) and 4 (encoder-decoder)
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ fixtures


def random_model(conditioning: str, cond_dim: int = 4, seed: int = 0, **card):
    torch.manual_seed(seed)
    model = build_model("encoder_decoder", conditioning=conditioning, cond_dim=cond_dim, image_size=[SIZE, SIZE],
                        widths=(8, 16, 16)).eval()
    name = {"none": "baseline"}.get(conditioning, conditioning)
    model.card = {"name": f"test-{name}", "conditioning": conditioning, "dataset": "clevr-seg",
                  "condition": {4: "quadrant", 3: "point"}[cond_dim], "image_size": [SIZE, SIZE], **card}
    return model


def acdc_model():
    torch.manual_seed(0)
    model = build_model("unet", conditioning="inside", image_size=SIZE, channels=(8, 16, 32),
                        conditioning_at=("bottleneck", "decoder1")).eval()
    model.card = {"name": "test-acdc-inside", "conditioning": "inside", "dataset": "acdc", "condition": "phase_slice"}
    return model


@pytest.fixture(scope="module")
def quadrant_models():
    return [random_model(c) for c in ("none", "film", "guideme", "inside")]


@pytest.fixture(scope="module")
def clevr_root(tmp_path_factory):
    from inside_core.data import generate_clevr_seg

    root = tmp_path_factory.mktemp("clevr")
    generate_clevr_seg(root, 10, seed=3, size=SIZE, progress=False)
    return root


@pytest.fixture(scope="module")
def clevr_rows(clevr_root, tmp_path_factory):
    from inside_core.data import ClevrSegDataset

    # a private cache folder: tests never touch the user's cache
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSIDE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        dataset = ClevrSegDataset(clevr_root, condition="quadrant", split="all")
        point = ClevrSegDataset(clevr_root, condition="point", split="all")
    return ([F.row_from_item("quadrant", dataset[i]) for i in range(len(dataset))],
            [F.row_from_item("point", point[i]) for i in range(len(point))])


def acdc_rows(count: int = 12) -> list[F.Row]:
    """Synthetic ACDC-like rows: a disc whose centre moves down with slice position."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        phase, position = float(k % 2), k / (count - 1)
        yy, xx = np.mgrid[:SIZE, :SIZE]
        mask = np.zeros((SIZE, SIZE), np.int64)
        mask[(yy - 16 - 12 * position) ** 2 + (xx - 24) ** 2 < 64] = 3
        rows.append(F.Row(rng.random((1, SIZE, SIZE), dtype=np.float32), acdc_condition(phase, position), mask,
                          f"{'ES' if phase else 'ED'}, slice {k}"))
    return rows


def panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def colour_bars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def render(fig, fmt: str) -> bytes:
    buffer = io.BytesIO()
    F.save_figure(fig, buffer, format=fmt)
    return buffer.getvalue()


def pixels(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def pdf_streams(data: bytes) -> bytes:
    """All content streams of a PDF, inflated (matplotlib compresses them with Flate)."""
    out = []
    # the end of line before "endstream" is left in: a compressed stream may end in a "\r" byte of its own,
    # and decompressobj keeps what follows the compressed data aside (unused_data)
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            out.append(zlib.decompressobj().decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return b"\n".join(out)


_PDF_STRING = re.compile(rb"\((?:\\.|[^\\)])*\)", re.S)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _pdf_literal(literal: bytes) -> bytes:
    """The bytes of a PDF literal string "(...)": backslash escapes and octal codes resolved."""
    body, out, k = literal[1:-1], bytearray(), 0
    while k < len(body):
        if body[k:k + 1] != b"\\":
            out += body[k:k + 1]
            k += 1
            continue
        octal = re.match(rb"[0-7]{1,3}", body[k + 1:k + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            k += 1 + len(octal.group())
        else:
            out += _PDF_ESCAPES.get(body[k + 1:k + 2], body[k + 1:k + 2])
            k += 2
    return bytes(out)


def pdf_text(data: bytes) -> str:
    """The text a PDF draws, one line per text object (BT ... ET), as a reader's copy-paste would give it.

    matplotlib writes TrueType (Type 42) text with an Identity encoding: each string holds UTF-16BE codes
    (its ToUnicode CMap is the identity), so the strings decode without a PDF library.
    """
    lines = []
    for block in re.findall(rb"BT\b(.*?)\bET", pdf_streams(data), re.S):
        pieces = [_pdf_literal(m.group()) for m in _PDF_STRING.finditer(block)]
        lines.append("".join(p.decode("utf-16-be", errors="replace") for p in pieces))
    return "\n".join(lines).replace("\N{MINUS SIGN}", "-")


def check_file(data: bytes, fmt: str, words: tuple[str, ...] = ()) -> None:
    """Format checks: PDF holds text (BT/Tj operators) in embedded TrueType fonts, with `words` in it;
    SVG keeps text as <text>, with `words`; PNG records >= 300 dpi."""
    if fmt == "pdf":
        assert data.startswith(b"%PDF")
        streams = pdf_streams(data)
        assert b"BT" in streams and (b"Tj" in streams or b"TJ" in streams), "the PDF draws no text"
        assert b"/FontFile2" in data, "TrueType (Type 42) fonts are not embedded"
        assert b"/Subtype /Type3" not in data, "Type 3 fonts are rejected by publishers"
        assert b"CreationDate" not in data
        text = pdf_text(data)
        for word in words:
            assert word in text, f"{word!r} is not in the PDF's text: {text[:300]!r}"
    elif fmt == "svg":
        text = data.decode()
        assert "<svg" in text and "<text" in text, "the SVG does not keep text as text"
        for word in words:
            assert word in text
        assert "<dc:date>" not in text
    else:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        assert all(round(d) >= 300 for d in image.info["dpi"])
        assert "Software" not in image.info


# ------------------------------------------------------------------------------------------- style


def test_figure_sizes_and_errors(tmp_path):
    assert F.figure_size("single", 0.5) == (3.5, 1.75)
    assert F.figure_size("double", 1.0)[0] == pytest.approx(7.16)
    with pytest.raises(ValueError, match="unknown width"):
        F.figure_size("triple", 1.0)
    fig = F.explorer_figure(*explore(random_model("inside"), one_hot("quadrant", "top_left")))
    with pytest.raises(ValueError, match="unsupported figure format"):
        F.save_figure(fig, tmp_path / "figure.jpg")
    with pytest.raises(ValueError, match="dpi"):
        F.save_figure(fig, tmp_path / "figure.png", dpi=150)
    F.save_figure(fig, tmp_path / "preview.png", dpi=120, preview=True)  # web previews may go lower
    with Image.open(tmp_path / "preview.png") as image:
        assert round(image.info["dpi"][0]) == 120
    F.save_figure(fig, tmp_path / "sub" / "figure.png")  # creates folders, writes atomically
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["figure.png"]


def explore(model, z, image_seed: int = 0, channels: int = 3):
    image = np.random.default_rng(image_seed).random((channels, SIZE, SIZE), dtype=np.float32)
    mask = (np.random.default_rng(image_seed + 1).random((SIZE, SIZE)) > 0.8).astype(np.float32)
    explorer = Explorer(model, image, mask)
    return explorer, explorer.update(z)


# ----------------------------------------------------------------------------------- explorer view


@pytest.mark.parametrize("conditioning", ["none", "film", "guideme", "inside"])
def test_explorer_figure_every_conditioning(conditioning):
    explorer, prediction = explore(random_model(conditioning), one_hot("quadrant", "top_right"))
    fig = F.explorer_figure(explorer, prediction, title="test", width="single")
    assert fig.get_size_inches()[0] == pytest.approx(3.5)
    assert len(panels(fig)) == (2 if conditioning == "none" else 3)
    # INSIDE's attention and Guide Me's map come with a labelled colour bar; FiLM's bars need none
    assert len(colour_bars(fig)) == (1 if conditioning in ("inside", "guideme") else 0)
    assert all(bar.get_ylabel() for bar in colour_bars(fig))
    check_file(render(fig, "svg"), "svg", ("Input", "Prediction"))


def test_explorer_figure_multiclass_has_label_legend():
    explorer, prediction = explore(acdc_model(), acdc_condition(1.0, 0.5), channels=1)
    fig = F.explorer_figure(explorer, prediction, width="double")
    legend_text = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend_text == ["RV", "MYO", "LV", "ground truth"]  # the explorer has a mask: dashed outline


def test_explorer_figure_changes_with_conditioning():
    model = random_model("inside")
    explorer, first = explore(model, one_hot("quadrant", "top_left"))
    second = explorer.update(one_hot("quadrant", "bottom_right"))
    assert not np.array_equal(pixels(F.explorer_figure(explorer, first)), pixels(F.explorer_figure(explorer, second)))


def test_same_inputs_give_byte_identical_files():
    def build():
        return F.explorer_figure(*explore(random_model("inside"), one_hot("quadrant", "top_left")))

    for fmt in F.FORMATS:
        assert render(build(), fmt) == render(build(), fmt), fmt


def test_primitives_geometry():
    model = random_model("inside")
    _, prediction = explore(model, one_hot("quadrant", "top_left"))
    params = prediction.conditioning[0]
    geometry = F.attention_geometry(params, SIZE, SIZE)
    # pixel = (t + 1) n / 2 - 0.5: t = -1 is the image's left edge (-0.5), t = 1 its right edge
    assert geometry["x"] == pytest.approx((params.mu_x[0].numpy().astype(np.float64) + 1) * SIZE / 2 - 0.5)
    mean = F.mean_attention(params, SIZE, SIZE)
    assert mean == pytest.approx(params.attention(SIZE, SIZE)[0].mean(0).numpy(), abs=1e-5)


def test_quadrant_mass():
    attention = np.zeros((4, 6))
    attention[:2, :3] = 1.0  # all mass top left
    assert F.quadrant_mass(attention) == pytest.approx([1, 0, 0, 0])
    assert F.quadrant_mass(np.ones((5, 5))).sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------- the kinds


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_qualitative_every_format(quadrant_models, clevr_rows, fmt):
    rows = clevr_rows[0][:3]
    fig = F.qualitative_figure(quadrant_models, rows, width="double")
    # input, ground truth, 4 models, INSIDE attention; 3 rows
    assert sum(ax.get_title() != "" for ax in fig.axes) == 7
    assert fig.get_size_inches()[0] == pytest.approx(7.16)
    check_file(render(fig, fmt), fmt, ("Ground truth", "INSIDE attention", "Guide Me"))


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_sweep_every_format(clevr_rows, fmt):
    model = random_model("inside", cond_dim=3)
    fig = F.sweep_figure(model, clevr_rows[1][0], "x", [-0.5, 0.0, 0.5], width="single")
    check_file(render(fig, fmt), fmt, ("attention",))


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_attention_every_format(fmt):
    fig = F.attention_figure(acdc_model(), acdc_rows(), width="double")
    check_file(render(fig, fmt), fmt, ("slice position",))


def test_attention_point_and_quadrant(clevr_rows):
    quadrant_rows, point_rows = clevr_rows
    check_file(render(F.attention_figure(random_model("inside"), quadrant_rows), "svg"), "svg", ("top left",))
    check_file(render(F.attention_figure(random_model("inside", 3), point_rows), "svg"), "svg", ("requested",))
    with pytest.raises(ValueError, match="needs an INSIDE model"):
        F.attention_figure(random_model("film"), quadrant_rows)


def test_attention_figure_asks_the_condition_for_regions(clevr_rows):
    """The mass per region is drawn because the condition has regions, not because of its name."""
    from inside_core.conditions.builtin import Quadrant

    class Unplaced(Quadrant):  # the same values, but not places in the image
        def region_mass(self, attention):
            return None

    model = random_model("inside")
    placed = panels(F.attention_figure(model, clevr_rows[0]))[-1]
    assert placed.get_title() == "attention mass (chance 0.25)" and placed.get_xlabel() == "quadrant of the image"
    assert [t.get_text() for t in placed.get_xticklabels()] == ["TL", "TR", "BR", "BL"]
    unplaced = panels(F.attention_figure(model, clevr_rows[0], condition=Unplaced()))[-1]
    assert unplaced.get_title() == "" and unplaced.get_ylabel().startswith(r"$\sigma$ per channel")
    assert [t.get_text() for t in unplaced.get_xticklabels()] == ["top left", "top right", "bottom right",
                                                                   "bottom left"]


@pytest.mark.parametrize("conditioning", ["guideme", "film", "none"])
def test_sweep_other_conditionings(clevr_rows, conditioning):
    model = random_model(conditioning, cond_dim=3)
    fig = F.sweep_figure(model, clevr_rows[1][0], "r", [0.2, 0.5], width="single")
    # Guide Me adds its alpha + beta row (and a colour bar); FiLM and the baseline have no spatial map
    assert len(fig.axes) == (2 * 2 + 1 if conditioning == "guideme" else 2)
    check_file(render(fig, "svg"), "svg")


def test_sweep_changes_with_conditioning(clevr_rows):
    model = random_model("inside", cond_dim=3)
    row = clevr_rows[1][0]
    left = pixels(F.sweep_figure(model, row, "x", [-0.6, -0.3]))
    right = pixels(F.sweep_figure(model, row, "x", [0.3, 0.6]))
    assert left.shape == right.shape and not np.array_equal(left, right)


def test_qualitative_changes_with_conditioning(quadrant_models, clevr_rows):
    row = clevr_rows[0][0]
    a = F.Row(row.image, one_hot("quadrant", "top_left"), row.mask, "a")
    b = F.Row(row.image, one_hot("quadrant", "bottom_right"), row.mask, "a")
    assert not np.array_equal(pixels(F.qualitative_figure(quadrant_models[3:], [a])),
                              pixels(F.qualitative_figure(quadrant_models[3:], [b])))


def test_sweep_conditions():
    zs, locations = F.sweep_conditions("point", point_condition(0.1, 0.2, 0.3), "r", [0.25, 0.5])
    assert np.allclose(zs[1], [0.1, 0.2, 0.5]) and locations == [None, None]
    zs, locations = F.sweep_conditions("quadrant", one_hot("quadrant", "bottom_left"), "x", [-0.9, 0.9])
    assert np.allclose(zs[0], one_hot("quadrant", "bottom_left")) and np.allclose(zs[1], one_hot("quadrant",
                                                                                             "bottom_right"))
    assert locations[1] == (0.9, 0.5)
    zs, _ = F.sweep_conditions("phase_slice", acdc_condition(0, 0.5), "phase", [1.0])
    assert np.allclose(zs[0], [1.0, 0.5])
    with pytest.raises(ValueError, match="cannot sweep"):
        F.sweep_conditions("point", point_condition(0, 0, 0.3), "slice", [0.5])


def test_parse_and_describe_conditions():
    assert np.allclose(F.parse_condition("quadrant", "top_right"), one_hot("quadrant", "top_right"))
    assert np.allclose(F.parse_condition("point", "0.5,-0.25,0.3"), [0.5, -0.25, 0.3])
    assert np.allclose(F.parse_condition("phase_slice", "ES,0.5"), [1.0, 0.5])
    with pytest.raises(ValueError, match="cannot read condition"):
        F.parse_condition("quadrant", "middle")
    assert F.describe_condition("quadrant", one_hot("quadrant", "top_left")) == "top left"
    assert F.describe_condition("phase_slice", acdc_condition(1.0, 0.5)) == "ES, slice 0.50"


# ---------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoints")
    for conditioning in ("none", "film", "guideme", "inside"):
        model = random_model(conditioning)
        name = {"none": "baseline"}.get(conditioning, conditioning)
        save_checkpoint(model, {k: v for k, v in model.card.items() if k != "name"},
                        directory / f"clevr-seg-quadrant-{name}")
    model = random_model("inside", cond_dim=3)
    save_checkpoint(model, {k: v for k, v in model.card.items() if k != "name"}, directory / "clevr-seg-point-inside")
    return directory


def run_cli(*arguments: str) -> int:
    return cli_main(["figures", *arguments])


@pytest.mark.parametrize("kind", ["qualitative", "sweep", "attention"])
def test_cli_kinds_on_defaults_of_a_checkpoint_dir(kind, checkpoint_dir, clevr_root, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / f"{kind}.pdf"
    assert run_cli(kind, "--out", str(out), "--checkpoint-dir", str(checkpoint_dir), "--data", str(clevr_root),
                   "--split", "all") == 0
    # the defaults: four quadrant models; the point model swept along x; the point model's attention
    words = {"qualitative": ("Ground truth", "Baseline", "Guide Me", "INSIDE attention", "top left"),
             "sweep": ("x = -0.75", "x = 0.75", "INSIDE mask", "mean attention"),
             "attention": ("requested", "channel mean")}[kind]
    check_file(out.read_bytes(), "pdf", words)


def test_cli_options(checkpoint_dir, clevr_root, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))
    common = ["--checkpoint-dir", str(checkpoint_dir), "--data", str(clevr_root), "--split", "all"]
    out = tmp_path / "q.png"
    assert run_cli("qualitative", "--out", str(out), "--checkpoints", "clevr-seg-quadrant-inside",
                   "--samples", "1", "--conditions", "top_left", "bottom_right", "--width", "single", *common) == 0
    check_file(out.read_bytes(), "png")
    with Image.open(out) as image:
        assert image.size[0] == pytest.approx(3.5 * 300, abs=2)
    out = tmp_path / "s.svg"
    assert run_cli("sweep", "--out", str(out), "--checkpoints", "clevr-seg-point-inside", "--variable", "r",
                   "--values", "0.2", "0.4", *common) == 0
    assert "r = 0.40" in out.read_text().replace("\N{MINUS SIGN}", "-")


def test_cli_table(checkpoint_dir, clevr_root, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIDE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "table.tex"
    assert run_cli("table", "--out", str(out), "--checkpoint-dir", str(checkpoint_dir), "--data", str(clevr_root),
                   "--split", "all") == 0
    latex = out.read_text()
    assert "\\toprule" in latex and "\\midrule" in latex and "\\bottomrule" in latex
    assert "INSIDE" in latex and "Guide Me" in latex
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("| Model") and markdown.count("\n") == 6


def test_cli_errors(checkpoint_dir, tmp_path, capsys):
    assert run_cli("qualitative", "--out", str(tmp_path / "x.jpg")) == 2
    assert run_cli("table", "--out", str(tmp_path / "x.pdf")) == 2
    assert run_cli("sweep", "--out", str(tmp_path / "x.pdf"), "--checkpoints", "no-such-model",
                   "--checkpoint-dir", str(checkpoint_dir)) == 2
    error = capsys.readouterr().err
    assert error.count("error:") == 3 and "no-such-model" in error


def test_cli_output_is_reproducible_across_processes(checkpoint_dir, clevr_root, tmp_path):
    """Two separate runs of the same command give byte-identical files (no dates, fixed ids)."""
    for fmt in ("svg", "pdf"):
        outputs = []
        for run in range(2):
            out = tmp_path / f"run{run}.{fmt}"
            env_cache = tmp_path / f"cache{run}"
            subprocess.run([sys.executable, "-m", "inside_core", "figures", "sweep", "--out", str(out),
                            "--checkpoint-dir", str(checkpoint_dir), "--data", str(clevr_root), "--split", "all",
                            "--steps", "3"], check=True, cwd=REPO,
                           env={**_env(), "INSIDE_CACHE_DIR": str(env_cache)}, capture_output=True)
            outputs.append(out.read_bytes())
        assert outputs[0] == outputs[1], fmt


def _env() -> dict:
    import os

    return dict(os.environ)


# ------------------------------------------------------------------- the export's view as shown


def texts(fig) -> str:
    """Every text a figure draws (titles, labels, legends, captions), one per line."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_text()).replace("\N{MINUS SIGN}", "-")


def point_view(mask: bool = False):
    model = random_model("inside", cond_dim=3)
    image = np.random.default_rng(0).random((3, SIZE, SIZE), dtype=np.float32)
    truth = np.zeros((SIZE, SIZE), np.float32)
    truth[10:20, 30:40] = 1
    explorer = Explorer(model, image, truth if mask else None)
    values = {"x": 0.3, "y": -0.2, "r": 0.4}  # aliases of loc_x, loc_y, radius
    return explorer, explorer.update(point_condition(0.3, -0.2, 0.4)), truth, values


def test_explorer_figure_carries_z_values_and_dice_in_its_pdf():
    explorer, prediction, truth, values = point_view()
    fig = F.explorer_figure(explorer, prediction, title="clevr-seg-point-inside, sample 3", mask=truth,
                            values=values, condition="point")
    expected = ("clevr-seg-point-inside, sample 3", "z = [0.30, -0.20, 0.40]", "x 0.30, y -0.20, r 0.40",
                f"Dice {explorer.dice(prediction, truth):.2f}", "point: (0.30, -0.20), r 0.40", "mean attention")
    for word in expected:
        assert word in texts(fig).replace("\n", " "), word
    check_file(render(fig, "pdf"), "pdf", ("Input", "Prediction", "INSIDE attention", "z = [0.30, -0.20, 0.40]",
                                          "ground truth", "mean attention"))
    # the old call draws what it drew: no caption, the explorer's own (here: no) mask
    old = F.explorer_figure(explorer, prediction, title="test")
    assert "z = [" not in texts(old) and "ground truth" not in texts(old)


def test_explorer_figure_ground_truth_per_call_and_toggle():
    explorer, prediction, truth, _ = point_view()  # the explorer holds no mask: the page's case
    shown = F.explorer_figure(explorer, prediction, mask=truth)
    hidden = F.explorer_figure(explorer, prediction, mask=truth, show_ground_truth=False)
    assert "ground truth" in texts(shown) and "ground truth" not in texts(hidden)
    assert not np.array_equal(pixels(shown), pixels(hidden))
    own, _, _, _ = point_view(mask=True)  # a sample mask is the default, and mask=None drops it
    assert "ground truth" in texts(F.explorer_figure(own, prediction))
    assert "ground truth" not in texts(F.explorer_figure(own, prediction, mask=None))


def test_explorer_figure_one_channel_and_long_titles():
    explorer, prediction, truth, values = point_view()
    fig = F.explorer_figure(explorer, prediction, mask=truth, channel=3)
    assert "INSIDE channel 3" in texts(fig) and "attention $a_{3}$" in texts(fig)
    with pytest.raises(ValueError, match="out of range"):
        F.explorer_figure(explorer, prediction, channel=10_000)
    title = "a title long enough to be cut off at both ends of a single-column figure, as the issue reported"
    fig = F.explorer_figure(explorer, prediction, title=title, width="single", values=values)
    assert fig.get_suptitle().replace("\n", " ") == title and "\n" in fig.get_suptitle()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, "the title runs past the figure's edges"


def test_compare_figure_has_both_sides():
    explorer, prediction, truth, values = point_view()
    other = Explorer(random_model("guideme", cond_dim=3), explorer.image)
    second = other.update(prediction.z)
    fig = F.explorer_figure(explorer, prediction, mask=truth, values=values, name="INSIDE",
                            compare=(other, second, "Guide Me"))
    assert fig.get_size_inches()[0] == pytest.approx(F.WIDTHS["double"])
    assert [sub.get_suptitle() for sub in fig.subfigs] == ["INSIDE", "Guide Me"]
    titles = [ax.get_title() for ax in panels(fig)]
    assert titles.count("Prediction") == 2 and "INSIDE attention" in titles and r"Guide Me $\alpha+\beta$" in titles
    assert texts(fig).count("z = [0.30, -0.20, 0.40]") == 2
    check_file(render(fig, "pdf"), "pdf", ("INSIDE", "Guide Me", "ground truth"))
    with pytest.raises(ValueError, match="two"):
        F.compare_figure([(explorer, prediction, "INSIDE")])


def test_figures_ask_the_registry():
    """x, y, r are aliases of the point's controls; a 3-number z without a card is refused, not guessed."""
    assert F.default_sweep_values("point", "r", 3) == pytest.approx([0.2, 0.4, 0.6])
    assert F.default_sweep_values("point", "radius", 3) == F.default_sweep_values("point", "r", 3)
    assert F.default_sweep_variable("phase_slice") == "slice"
    assert F.default_sweep_variable("colour") == "value"
    model = random_model("inside", cond_dim=3)
    model.card = {k: v for k, v in model.card.items() if k != "condition"}
    with pytest.raises(ValueError, match="say which condition"):
        F.model_condition(model)
    # a user's table condition is rebuilt from the card's declaration (condition_of), not looked up by name
    spec = {"variables": {"age": {"type": "continuous", "range": [20, 80]}, "pos": {"type": "slice_position"}}}
    model.card = {**model.card, "condition": "table", "condition_spec": spec}
    condition = F.samples.condition_object(None, model)
    assert isinstance(condition, TableCondition) and condition.default_sweep_variable() == "pos"
    assert F.model_condition(model) == "table"


def test_centres_coloured_by_gamma_as_on_the_page():
    """One rule for a centre's colour: the exported figure, the page's chart and the page's overlay all
    colour a channel's centre by the sign of its γ with the palette's two colours."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from app import plots
    from app.frame import overlay_spec
    from inside_core import palette

    model = random_model("inside")
    _, prediction = explore(model, one_hot("quadrant", "top_left"))
    params = prediction.conditioning[0]
    gamma = params.gamma[0].detach().numpy()
    assert (gamma > 0).any() and (gamma < 0).any()  # both colours are exercised
    figure, ax = plt.subplots()
    drawn = F.draw_attention_ellipses(ax, params, SIZE, SIZE, max_channels=None)
    colours = [to_hex(c).upper() for c in ax.collections[-1].get_facecolors()]
    plt.close(figure)
    assert colours == [palette.GAMMA_POSITIVE if gamma[c] >= 0 else palette.GAMMA_NEGATIVE for c in drawn]
    spec = overlay_spec((SIZE, SIZE))
    assert (spec["positive"], spec["negative"]) == (palette.GAMMA_POSITIVE, palette.GAMMA_NEGATIVE)
    from inside_core.explorer import channel_table
    chart = plots.attention_figure(np.zeros((SIZE, SIZE, 3), np.uint8), channel_table(params), None)
    scale = chart["data"][1]["marker"]["colorscale"]
    assert scale[0][1] == palette.GAMMA_NEGATIVE and scale[-1][1] == palette.GAMMA_POSITIVE
