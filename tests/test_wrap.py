"""inside_core.condition: conditioning layers in MONAI's BasicUNet, UNet and DynUNet (2-D and 3-D) and in a
plain module; the encode/decode split; saving and loading from a card without pickling."""

import json
from pathlib import Path

import pytest
import torch
from monai.networks.nets import BasicUNet, DynUNet, UNet
from torch import nn

import inside_core
from inside_core import INSIDE, build_model, load_checkpoint, save_checkpoint
from inside_core.base_networks import build_base_network
from inside_core.cards import card_problems
from inside_core.checkpoints import CheckpointError
from inside_core.data.cubes3d import two_cubes
from inside_core.layers_nd import InsideND
from inside_core.wrap import ConditionedModel

SIDE = {2: 32, 3: 32}  # BasicUNet pools four times; instance norm needs more than one voxel


def monai_nets(dims):
    """(network, at) for each MONAI network, small enough for a CPU test."""
    return {
        "BasicUNet": (BasicUNet(spatial_dims=dims, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 8, 4)),
                      ["down_3", "upcat_1"]),
        "UNet": (UNet(spatial_dims=dims, in_channels=1, out_channels=2, channels=(4, 8, 8), strides=(2, 2),
                      num_res_units=1), ["model.1.submodule.1", "model.2"]),
        "DynUNet": (DynUNet(spatial_dims=dims, in_channels=1, out_channels=2, kernel_size=[3, 3, 3],
                            strides=[1, 2, 2], upsample_kernel_size=[2, 2], filters=[4, 8, 8]),
                    ["bottleneck", "upsamples.1"]),
    }


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("net_name", ["BasicUNet", "UNet", "DynUNet"])
def test_monai_networks_are_conditioned_and_split(dims, net_name):
    torch.manual_seed(0)
    net, at = monai_nets(dims)[net_name]
    model = inside_core.condition(net, at=at, layer="inside", cond_dim=3)
    x = torch.randn(2, 1, *[SIDE[dims]] * dims)
    z = torch.randn(2, 3)

    out = model(x, z)
    assert out.logits.shape == (2, 2, *[SIDE[dims]] * dims)
    assert len(out.conditioning) == 2
    assert all(isinstance(layer, INSIDE if dims == 2 else InsideND) for layer in model.conditioning_layers())
    # z changes the output (the layers are in the path), and gradients reach the layers and the network
    (out.logits.square().mean() + model.sigma_penalty(out.conditioning)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.conditionings[0].parameters())
    assert next(net.parameters()).grad is not None

    model.eval()
    with torch.no_grad():
        full = model(x, z)
        features = model.encode(x)
        split = model.decode(features, z)
        other = model.decode(features, -z)
    torch.testing.assert_close(split.logits, full.logits, rtol=0, atol=0)
    assert not torch.allclose(other.logits, split.logits)
    # the cached calls are the z-independent prefix: never a conditioned submodule's ancestor or successor
    cached = {id(m) for m, _ in features.calls}
    modules = dict(net.named_modules())
    assert id(modules[at[0]]) in cached and id(modules[at[1]]) not in cached
    # decode twice from the same features: nothing in the cache was changed
    torch.testing.assert_close(model.decode(features, z).logits, full.logits, rtol=0, atol=0)


def test_conditioning_changes_the_prediction_where_inside_says():
    """A hand-set INSIDE attention at the last stage: far from its Gaussian the logits are the shift alone."""
    torch.manual_seed(1)
    net, _ = monai_nets(2)["BasicUNet"]
    model = inside_core.condition(net, at=["upcat_1"], layer="inside", cond_dim=2, sigma_max=0.3).eval()
    x = torch.randn(1, 1, 32, 32)
    layer = model.conditionings[0]
    with torch.no_grad():  # a head of zeros: every mu = 0, sigma = (sigma_min + sigma_max) / 2 ~ 0.15
        layer.hypernetwork.head.weight.zero_()
        layer.hypernetwork.head.bias.zero_()
        a = model(x, torch.zeros(1, 2)).logits
        b = model(x + 10 * torch.randn_like(x), torch.zeros(1, 2)).logits
    # the attention is ~0 at the corners, so the corner logits do not depend on x there; the centre's do
    assert torch.allclose(a[..., 0, 0], b[..., 0, 0], atol=1e-3)
    assert not torch.allclose(a[..., 16, 16], b[..., 16, 16], atol=1e-3)


class PlainNet(nn.Module):
    """A user's own network: its forward calls submodules, one twice (the pool), with code in between."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.body = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(12, 3, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        y = self.body(self.pool(s))
        y = self.pool(y) * 0.5
        y = nn.functional.interpolate(y, scale_factor=4)
        return self.head(torch.cat([y, s], 1))


@pytest.mark.parametrize("layer", ["inside", "film", "guideme"])
def test_plain_module(layer):
    torch.manual_seed(2)
    model = inside_core.condition(PlainNet(), at=["body"], layer=layer, cond_dim=4, input_shape=(2, 16, 16)).eval()
    x, z = torch.randn(3, 2, 16, 16), torch.randn(3, 4)
    full = model(x, z)
    features = model.encode(x)
    # the pool ran once before the split (cached) and runs again after it (computed)
    assert [type(m).__name__ for m, _ in features.calls] == ["Conv2d", "MaxPool2d", "Sequential"]
    torch.testing.assert_close(model.decode(features, z).logits, full.logits, rtol=0, atol=0)
    expanded = model.decode(model.encode(x[:1]).expand(3), z)
    torch.testing.assert_close(expanded.logits, torch.cat([model(x[:1], z[i:i + 1]).logits for i in range(3)]))


def test_wrapper_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="no submodule named.*stem, pool, body, head"):
        inside_core.condition(PlainNet(), at=["nope"], cond_dim=2)
    with pytest.raises(ValueError, match="Guide Me.*input_shape"):
        inside_core.condition(PlainNet(), at=["body"], layer="guideme", cond_dim=2)
    model = inside_core.condition(PlainNet(), at=["pool"], cond_dim=2)
    with pytest.raises(RuntimeError, match="ran twice"):
        model(torch.randn(1, 2, 16, 16), torch.randn(1, 2))
    model = inside_core.condition(PlainNet(), at=["body"], cond_dim=2)
    with pytest.raises(ValueError, match="z of shape"):
        model(torch.randn(1, 2, 16, 16), torch.randn(1, 5))
    with pytest.raises(ValueError, match="input batch"):
        model(torch.randn(1, 3, 16, 16), torch.randn(1, 2))


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        s = self.a(x)
        y = self.b(s)
        return y + s.mul_(2)  # changes the cached output of `a` in place


def test_decode_detects_in_place_changes_of_the_cache():
    model = inside_core.condition(InPlace(), at=["b"], cond_dim=2, input_shape=(1, 8, 8))
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad(), pytest.raises(RuntimeError, match="in place"):
        model.decode(model.encode(x), torch.randn(1, 2))


ARCH = {"name": "wrapped", "network": "monai.BasicUNet",
        "args": {"spatial_dims": 2, "in_channels": 3, "out_channels": 1, "features": [4, 4, 8, 8, 8, 4]},
        "conditioning": {"at": ["down_4", "upcat_1"], "layer": "inside", "sigma_max": 0.4},
        "cond_dim": 4, "image_size": [32, 32]}


@pytest.mark.parametrize("layer", ["inside", "guideme"])
def test_card_round_trip_rebuilds_the_wrapped_network(tmp_path, layer):
    torch.manual_seed(3)
    arch = json.loads(json.dumps(ARCH))
    arch["conditioning"]["layer"] = layer
    if layer == "guideme":
        del arch["conditioning"]["sigma_max"]
    model = build_model(**{k: v for k, v in arch.items() if k != "name"}, name="wrapped")
    assert model.config == arch
    path = save_checkpoint(model, {"name": "wrapped-test"}, tmp_path / "w")
    loaded = load_checkpoint(path)
    assert isinstance(loaded, ConditionedModel) and loaded.card["architecture"] == arch
    x, z = torch.randn(2, 3, 32, 32), torch.randn(2, 4)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, z).logits, model(x, z).logits, rtol=0, atol=0)


def test_condition_on_a_built_base_network_is_saveable_3d_dynunet(tmp_path):
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3], "strides": [1, 2, 2],
            "upsample_kernel_size": [2, 2], "filters": [4, 8, 8]}
    model = inside_core.condition(build_base_network("monai.DynUNet", args), at=["bottleneck"], layer="film",
                                  cond_dim=2)
    loaded = load_checkpoint(save_checkpoint(model, {"name": "dyn"}, tmp_path / "d"))  # shared weights: DynUNet
    x, z = torch.randn(1, 1, 16, 16, 16), torch.randn(1, 2)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, z).logits, model(x, z).logits, rtol=0, atol=0)


@pytest.mark.parametrize("change, needle", [
    (lambda a: a.update(network="os.system"), "'network' must be one of"),
    (lambda a: a.update(network="monai.SwinUNETR"), "'network' must be one of"),
    (lambda a: a["args"].update(act=["leakyrelu", {"negative_slope": 0.1}]), "'act' must be one of"),
    (lambda a: a["args"].update(features=[4, 4, 8, 8, 100000, 4]), "'features' each must be between"),
    (lambda a: a["args"].update(eval="1"), "not an argument cards may give"),
    (lambda a: a["args"].pop("spatial_dims"), "lacks 'spatial_dims'"),
    (lambda a: a["conditioning"].update(at="down_4"), "'at' must be a list"),
    (lambda a: a["conditioning"].update(at=["__class__.__init__ x"]), "'at' must be a list"),
    (lambda a: a["conditioning"].update(layer="attention"), "'layer' must be one of"),
    (lambda a: a["conditioning"].update(sigma_max=-1), "'sigma_max' must be above"),
    (lambda a: a["conditioning"].update(target="x"), "not a layer option"),
    (lambda a: a.update(image_size=[32, 10**9]), "'image_size' must be a list"),
    (lambda a: a.update(cond_dim="3"), "'cond_dim' must be an integer"),
    (lambda a: a.update(pickle="x"), "not a key of a wrapped network"),
])
def test_wrapped_cards_are_checked_before_building(tmp_path, change, needle):
    arch = json.loads(json.dumps(ARCH))
    change(arch)
    problems = card_problems({"name": "x", "architecture": arch})
    assert any(needle in p for p in problems), problems
    # and load_checkpoint refuses such a card with one line naming the file
    model = build_model(**{k: v for k, v in ARCH.items() if k != "name"}, name="wrapped")
    path = save_checkpoint(model, {"name": "ok"}, tmp_path / "c")
    from safetensors.torch import load_file, save_file

    state = load_file(path)
    save_file(state, path, metadata={"format": "pt", "inside_card": json.dumps({"name": "x", "architecture": arch})})
    with pytest.raises(CheckpointError, match=f"{path}.*invalid model card"):
        load_checkpoint(path)


def test_config_names_the_base_network(tmp_path):
    from inside_core.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("name: wrapped-quadrant\ndataset: clevr-seg\ndata: {root: data/clevr-seg}\nmodel:\n"
                    "  network: monai.BasicUNet\n  args: {spatial_dims: 2, in_channels: 3, out_channels: 1}\n"
                    "  conditioning: {at: [down_4, upcat_1], layer: inside}\n")
    config = load_config(path)
    assert config["model"]["name"] == "wrapped" and config["model"]["cond_dim"] == 4
    model_cfg = dict(config["model"])
    model = build_model(model_cfg.pop("name"), **model_cfg, image_size=[64, 64])
    assert isinstance(model, ConditionedModel) and model.image_size == (64, 64)


def test_explorer_drives_a_wrapped_network():
    """The dashboard's engine: encode once, update per z, sweep many z; all equal to the full forward."""
    from inside_core.explorer import Explorer

    torch.manual_seed(4)
    model = build_model(**{k: v for k, v in ARCH.items() if k != "name"}, name="wrapped").eval()
    explorer = Explorer(model, torch.rand(3, 32, 32))
    zs = [torch.randn(4).numpy() for _ in range(3)]
    updates = [explorer.update(z) for z in zs]
    swept = explorer.sweep(zs)
    for update, sweep, z in zip(updates, swept, zs, strict=True):
        full = explorer.full_forward(z)
        assert abs(update.probabilities - full.probabilities).max() < 1e-5
        assert abs(sweep.probabilities - full.probabilities).max() < 1e-5
        assert update.conditioning[0].mu_x.shape == (1, 8)  # the 2-D INSIDE layer's parameters, as the page reads them


@pytest.fixture
def one_thread():
    """Small 3-D convolutions run faster on one thread than fighting for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_3d_wrapped_network_learns_a_target_chosen_by_z(one_thread):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(8, 16, 16), strides=(2, 2))
    model = inside_core.condition(net, at=["model.1.submodule.1", "model.2"], layer="inside", cond_dim=2,
                                  sigma_max=0.5)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(120):
        x, y, z = two_cubes(8, generator)
        out = model(x, z)
        loss = nn.functional.binary_cross_entropy_with_logits(out.logits, y) + model.sigma_penalty(out.conditioning)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    def dice(logits, target):
        p = (logits > 0).float()
        return (2 * (p * target).sum() / (p.sum() + target.sum())).item()

    x, y, z = two_cubes(32, torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        right, swapped = dice(model(x, z).logits, y), dice(model(x, z.flip(1)).logits, y)
    assert right > 0.8 and swapped < 0.2, (right, swapped)


def test_a_card_whose_arguments_do_not_fit_together_is_refused_in_one_line(tmp_path):
    model = build_model(**{k: v for k, v in ARCH.items() if k != "name"}, name="wrapped")
    path = save_checkpoint(model, {"name": "ok"}, tmp_path / "c")
    from safetensors.torch import load_file, save_file

    bad = {"name": "wrapped", "network": "monai.UNet", "cond_dim": 2,
           "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2]},
           "conditioning": {"at": ["model.2"], "layer": "film"}}
    assert card_problems({"name": "x", "architecture": bad}) == []  # each argument is fine on its own
    save_file(load_file(path), path, metadata={"format": "pt", "inside_card": json.dumps({"name": "x",
                                                                                        "architecture": bad})})
    with pytest.raises(CheckpointError, match=f"{path}.*cannot build.*monai.UNet refuses.*strides"):
        load_checkpoint(path)
    bad["args"]["strides"] = [2, 2]
    bad["conditioning"]["at"] = ["model.9"]
    save_file(load_file(path), path, metadata={"format": "pt", "inside_card": json.dumps({"name": "x",
                                                                                        "architecture": bad})})
    with pytest.raises(CheckpointError, match=r"cannot build.*no submodule named \['model.9'\]"):
        load_checkpoint(path)


def test_the_shipped_3d_example_reproduces_its_card(one_thread, tmp_path):
    """checkpoints/cubes3d-unet-inside was trained by `inside train` from configs/; `inside evaluate` on a fresh
    copy of its test folder (the card's own data command) gives back the card's Dice, true z and swapped z."""
    import shlex
    from pathlib import Path

    from inside_core.cli import main as cli_main
    from inside_core.evaluate import evaluate_checkpoint

    path = Path(__file__).resolve().parents[1] / "checkpoints" / "cubes3d-unet-inside"
    model = load_checkpoint(path)
    assert isinstance(model.conditionings[0], InsideND) and model.input_shape == (1, 16, 16, 16)
    card = model.card
    assert " && inside train --config configs/cubes3d-unet-inside.yaml" in card["command"]
    metrics = card["metrics"]
    argv = shlex.split(metrics["data_generate"])[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "test")
    assert cli_main(argv) == 0
    fresh = evaluate_checkpoint(path, tmp_path / "test", split="all")
    for key in ("dice", "dice_z_swapped"):
        assert fresh[key] == pytest.approx(metrics[key], abs=1e-3)
    assert fresh["n"] == metrics["n"] == 200
    assert metrics["dice"] > 0.9 and metrics["dice_z_swapped"] > 0.9  # both cubes found: z decides which


@pytest.mark.parametrize("table, names", [
    ("table-clevr-seg-quadrant-wrapped.txt", ["clevr-seg-quadrant-inside", "clevr-seg-quadrant-basicunet-inside"]),
    ("table-cubes3d.txt", ["cubes3d-unet-inside", "cubes3d-unet-film"])])
def test_readme_rows_of_the_wrapped_examples_are_the_compare_tables(table, names):
    """The README's rows for the shipped wrapped examples carry the numbers `inside compare` wrote
    (checkpoints/reproduce.sh tables), and those are the cards' test metrics."""
    import re
    from pathlib import Path

    from inside_core.checkpoints import read_card

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    written = (root / "checkpoints" / table).read_text().split("\n\n")[0]  # the Markdown table
    for name in names:
        row = next(line for line in written.splitlines() if line.startswith(f"| {name} |"))
        numbers = re.findall(r"\d\.\d{3} ± \d\.\d{3}", row)
        readme_row = next(line for line in readme.splitlines() if line.startswith(f"| {name} |"))
        assert numbers and re.findall(r"\d\.\d{3} ± \d\.\d{3}", readme_row.replace("**", "")) == numbers
        metrics = read_card(root / "checkpoints" / name)["metrics"]
        assert numbers[0] == f"{metrics['dice']:.3f} ± {metrics['dice_std']:.3f}"


def test_cubes3d_folders_are_seeded_split_and_checked(tmp_path):
    """`inside data cubes3d`: same seed, same bytes; splits by index; the draws are `two_cubes`'s; a bad file is
    one line naming it."""
    from safetensors.torch import save_file

    from inside_core.data import Cubes3dDataset, DataError
    from inside_core.data.cubes3d import VOLUMES_FILE, write_cubes3d

    a, b = write_cubes3d(tmp_path / "a", 20, seed=3), write_cubes3d(tmp_path / "b", 20, seed=3)
    assert (a / VOLUMES_FILE).read_bytes() == (b / VOLUMES_FILE).read_bytes()
    sizes = {split: len(Cubes3dDataset(a, split)) for split in ("train", "val", "test", "all")}
    assert sizes == {"train": 16, "val": 2, "test": 2, "all": 20}
    every = Cubes3dDataset(a, "all")
    x, y, z, other = two_cubes(20, torch.Generator().manual_seed(3), with_other=True)
    for i in (0, 7, 19):
        item = every[i]
        torch.testing.assert_close(item["image"], x[i])
        assert torch.equal(item["mask"].float(), y[i]) and torch.equal(item["z"], z[i])
        assert torch.equal(every.other(i).float(), other[i])
        assert torch.equal(every.cubes(i)[int(z[i].argmax())].float(), y[i, 0])
    save_file({"image": torch.zeros(2, 1, 16, 16, 16), "cubes": torch.zeros(2, 3, 16, 16, 16, dtype=torch.uint8),
               "pick": torch.zeros(2, dtype=torch.int64)}, str(a / VOLUMES_FILE))
    with pytest.raises(DataError, match=rf"{VOLUMES_FILE}: expected image float32"):
        Cubes3dDataset(a, "all")
    (a / VOLUMES_FILE).write_bytes(b"not safetensors")
    with pytest.raises(DataError, match=rf"{VOLUMES_FILE}: not a safetensors file"):
        Cubes3dDataset(a, "all")


def test_inside_train_and_evaluate_take_a_3d_wrapped_config(tmp_path, one_thread, capsys):
    """The normal CLI path for volumes: `inside data cubes3d`, `inside train --config` (a wrapped 3-D MONAI UNet),
    `inside evaluate` and `inside compare` on the checkpoint, whose card records the wrapped 3-D architecture."""
    import yaml

    from inside_core.cli import main as cli_main

    config = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "configs" / "cubes3d-unet-inside.yaml"))
    config["data"] = {"root": str(tmp_path / "train"),
                      "generate": f"inside data cubes3d --out {tmp_path / 'train'} --count 40 --seed 1"}
    config["train"].update(epochs=1, batch_size=4)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert cli_main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")]) == 0
    checkpoint = tmp_path / "run" / "cubes3d-unet-inside"
    card = json.loads(checkpoint.with_suffix(".json").read_text())
    assert card["image_size"] == [16, 16, 16] and card["condition"] == "cube_half"
    assert card["architecture"]["network"] == "monai.UNet" and card["architecture"]["args"]["spatial_dims"] == 3
    assert cli_main(["data", "cubes3d", "--out", str(tmp_path / "test"), "--count", "10", "--seed", "1000"]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "test"),
                     "--split", "all"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 10 and 0 <= metrics["dice"] <= 1 and 0 <= metrics["dice_z_swapped"] <= 1
    assert cli_main(["compare", str(checkpoint), "--data", str(tmp_path / "test"), "--split", "all"]) == 0
    assert "| cubes3d-unet-inside | inside | cube_half | 16×16×16 |" in capsys.readouterr().out
