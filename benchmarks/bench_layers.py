"""Speed of the conditioning layers on quiet and busy cores, a training step, sub-pixel upsampling, torch.compile.

    python benchmarks/bench_layers.py [--load quiet|busy|both] [--repeats 30] [--threads N] [--compile]
                                      [--only layers network threads decode compile memory] [--keep-freed-memory]
    OMP_WAIT_POLICY=ACTIVE python benchmarks/bench_layers.py ...     (libgomp's spinning, for comparison)

Prints, from one run on this machine (the load average is printed with each section):
1. per layer, forward + backward at the reference bottleneck (32, 64, 50, 50), with 1 and N threads
   (default: torch's default, the physical cores), all calls interleaved so they share the load
   (FiLM is the plain broadcast formula; INSIDE and Guide Me run block by block, inside_core/layers.py):
   INSIDE / FiLM and Guide Me / FiLM at N threads (targets, quiet: <= 1.0 and <= 1.1; busy: INSIDE / FiLM
   <= 1.1) and each layer's N-thread / 1-thread time (target on busy cores: <= 1);
   each layer against its plain formula differentiated by autograd (FiLM: multiply, then add), for reference;
   `--load busy` starts one spinning process per core (`competing_load`) for that section, so the cores
   are contended whatever else the machine runs; `--load quiet` adds nothing;
2. one training step (forward, loss, backward, Adam) of the CLEVR-Seg encoder-decoder at 128x128, batch 32:
   INSIDE / no conditioning (target <= 1.10), and the same step with the decoder's "nearest x2 upsampling,
   then 3x3 conv" computed plainly instead of in sub-pixel form (`inside_core.networks.upsample_conv2d`);
   with `--only threads`: each layer alone, then the INSIDE training step, at N threads / 1 thread, per --load
   like section 1 (the issue's busy-core target for the layers, with each layer's voluntary context switches
   per N-thread call: about two per OpenMP parallel region; whether a busy machine should train with one
   thread: README, Speed);
3. the dashboard's decode (encoder output -> logits) at 200x200, one image, one thread, inference mode:
   plain upsampling / sub-pixel;
4. with --compile: the same training step under `torch.compile` (what `inside train --compile` does):
   seconds to compile, compiled / eager step time, and the steps after which compiling has paid off;
5. the (B, C, H, W) tensors each layer keeps for its backward pass.
`--keep-freed-memory` measures without the page faults of fresh full-size tensors (glibc's mallopt): they
dominate on this VM and favour the layers that make fewer new tensors; real runs pay them.
Timings are medians over interleaved repeats; a ratio is the median of the per-repeat ratios (both sides
measured back to back: a layer's 1- and N-thread calls are neighbours, their order alternating), with its
interquartile range, so it reflects the same moment's load.
The OpenMP wait policy is the project's (inside_core/threads.py: PASSIVE unless the environment sets one).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import time

import inside_core.threads as threads  # isort: skip  # first: the wait policy must be set before torch loads
import torch
import torch.nn.functional as F

from inside_core import INSIDE, FiLM, GuidingBlock, build_model
from inside_core.networks import UpsampleConv

LAYER_SHAPE = (32, 64, 50, 50)  # the reference's CLEVR-Seg bottleneck (batch 32)
SECTIONS = ("layers", "network", "threads", "decode", "compile", "memory")


# ------------------------------------------------------------------------------------------- timing

def time_interleaved(functions: dict, repeats: int, warmup: int = 3, switches: dict | None = None
                     ) -> dict[str, list[float]]:
    """Seconds per call of each function over `repeats` rounds, calling them in turn so they share the load
    (A B C, then C B A, ...).

    A key may be a (name, threads) pair: torch runs that call with that many threads. `switches`, if given,
    receives each key's voluntary context switches per call (the process's threads going to sleep: about
    two per OpenMP parallel region, each a wait for a core on busy cores)."""
    def call(key, fn):
        if isinstance(key, tuple):
            torch.set_num_threads(key[1])
        fn()

    for key, fn in functions.items():
        for _ in range(warmup):
            call(key, fn)
    samples: dict = {key: [] for key in functions}
    for round_ in range(repeats):
        # every other round in reverse order: no variant always runs right after the same one
        for key, fn in (list(functions.items()) if round_ % 2 == 0 else reversed(functions.items())):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
            start = time.perf_counter()
            call(key, fn)
            samples[key].append(time.perf_counter() - start)
            if switches is not None:
                switches.setdefault(key, []).append(resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before)
    return samples


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def paired_ratio(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """Median and interquartile range of the per-repeat ratios."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator, strict=True))
    if len(ratios) < 4:
        return statistics.median(ratios), ratios[0], ratios[-1]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q1, q3


def show_ratio(label: str, ratio: tuple[float, float, float], target: str = "") -> str:
    """One line: the ratio, its IQR and the target ("<= 1.1") or a note ("(reference)")."""
    median, low, high = ratio
    note = target if target.startswith("(") else f"target {target}" if target else ""
    return f"  {label:42s} {median:5.2f}  (IQR {low:.2f}-{high:.2f})   {note}".rstrip()


def load_average() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


@contextlib.contextmanager
def competing_load(processes: int):
    """`processes` busy-looping Python processes for the duration of the block: cores another program wants."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(1.0)  # let them reach the scheduler
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


# ------------------------------------------------------------------------------------------- layers

def plain_inside(x: torch.Tensor, z: torch.Tensor, layer: INSIDE) -> torch.Tensor:
    """INSIDE written as a straightforward composition of broadcasts (what autograd would keep)."""
    p = layer.params(z)
    a = p.attention(x.shape[2], x.shape[3])
    return (1 + p.gamma)[..., None, None] * (a * x) + p.beta[..., None, None]


def plain_guideme(x: torch.Tensor, z: torch.Tensor, layer: GuidingBlock) -> torch.Tensor:
    """Guide Me as the broadcast formula differentiated by autograd (the layer before its own Function)."""
    p = layer.params(z)
    scale = 1 + p.spatial_map().unsqueeze(1) + p.gamma_scale[:, :, None, None]
    return torch.addcmul(p.gamma_shift[:, :, None, None], x, scale)


def plain_film(x: torch.Tensor, z: torch.Tensor, layer: FiLM) -> torch.Tensor:
    """FiLM as multiply-then-add (two ops), to check the layer's fused addcmul is not the slower way."""
    p = layer.params(z)
    return x * (1 + p.gamma)[:, :, None, None] + p.beta[:, :, None, None]


def layer_benchmark(repeats: int, thread_counts: list[int], plain: bool = True,
                    switches: dict | None = None) -> dict[tuple[str, int], list[float]]:
    torch.manual_seed(0)
    b, c, h, w = LAYER_SHAPE
    d = 4
    x = torch.randn(b, c, h, w, requires_grad=True)
    z = torch.eye(d)[torch.randint(0, d, (b,))]
    grad = torch.randn(b, c, h, w)
    layers = {"film": FiLM(c, d), "guideme": GuidingBlock(c, d, h, w), "inside": INSIDE(c, d)}

    def step(layer):
        def run():
            x.grad = None
            layer(x, z)[0].backward(grad)
        return run

    # each layer's 1- and N-thread calls back to back (their order alternating with the rounds): the
    # N / 1 ratio compares calls a few milliseconds apart, under the same spinners and the same load
    functions = {(name, n): step(layer) for name, layer in layers.items() for n in thread_counts}
    if not plain:
        return time_interleaved(functions, repeats, switches=switches)
    many = thread_counts[-1]  # for reference, at N threads: the plain compositions autograd differentiates
    functions[("film, plain", many)] = step(lambda x_, z_: (plain_film(x_, z_, layers["film"]), None))
    functions[("guideme, plain", many)] = step(lambda x_, z_: (plain_guideme(x_, z_, layers["guideme"]), None))
    functions[("inside, plain", many)] = step(lambda x_, z_: (plain_inside(x_, z_, layers["inside"]), None))
    return time_interleaved(functions, repeats)


def report_layers(samples: dict, thread_counts: list[int], busy: bool) -> None:
    many = thread_counts[-1]
    print(f"  {'ms (median)':14s}" + "".join(f"{f'{n} thread(s)':>13s}" for n in thread_counts))
    for name in ("film", "guideme", "inside"):
        print(f"  {name:14s}" + "".join(f"{median_ms(samples[(name, n)]):13.2f}" for n in thread_counts))
    for n in thread_counts:
        inside_target = "<= 1.1" if busy else "<= 1.0"
        print(show_ratio(f"INSIDE / FiLM, {n} thread(s)", paired_ratio(samples[("inside", n)], samples[("film", n)]),
                         inside_target if n == many else ""))
        print(show_ratio(f"Guide Me / FiLM, {n} thread(s)",
                         paired_ratio(samples[("guideme", n)], samples[("film", n)]), "" if busy or n != many
                         else "<= 1.1"))
    for name in ("inside", "guideme"):  # against the faster of the two FiLMs where it is the plain one
        print(show_ratio(f"{name} / FiLM as multiply-then-add, {many} thr.",
                         paired_ratio(samples[(name, many)], samples[("film, plain", many)])))
    for name in ("film", "guideme", "inside"):
        print(show_ratio(f"{name}: plain formula / ours, {many} thread(s)",
                         paired_ratio(samples[(f"{name}, plain", many)], samples[(name, many)]), "(reference)"))
    if many > 1:
        for name in ("film", "guideme", "inside"):
            print(show_ratio(f"{name}: {many} threads / 1 thread",
                             paired_ratio(samples[(name, many)], samples[(name, 1)]), "<= 1" if busy else ""))


# ------------------------------------------------------------------------------------------ networks

def plain_upsampling(model: torch.nn.Module) -> torch.nn.Module:
    """The same model (shared parameters) with each `UpsampleConv` computed as nearest x2, then the 3x3 conv."""
    class PlainUpsampleConv(torch.nn.Module):
        def __init__(self, conv: torch.nn.Conv2d):
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))

    import copy

    plain = copy.copy(model)
    plain._modules = dict(model._modules)  # a shallow copy shares this dict: the original keeps its decoder
    plain.decoder = torch.nn.Sequential(*[PlainUpsampleConv(m.conv) if isinstance(m, UpsampleConv) else m
                                          for m in model.decoder])
    return plain


def training_step(model: torch.nn.Module, size: int = 128, batch: int = 32, compiled: torch.nn.Module | None = None):
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size)
    z = torch.eye(4)[torch.randint(0, 4, (batch,))]
    target = (torch.rand(batch, 1, size, size) > 0.5).float()
    optimiser = torch.optim.Adam(model.parameters())
    forward = model if compiled is None else compiled

    def run():
        optimiser.zero_grad(set_to_none=True)
        out = forward(x, z)
        loss = F.binary_cross_entropy_with_logits(out.logits, target) + model.sigma_penalty(out.conditioning)
        loss.backward()
        optimiser.step()

    return run


def network_benchmark(repeats: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    none = build_model("encoder_decoder", conditioning="none", cond_dim=4, image_size=128)
    inside = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=128)
    return time_interleaved({"none": training_step(none), "inside": training_step(inside),
                             "inside, plain upsampling": training_step(plain_upsampling(inside))}, repeats, warmup=2)


def decode_benchmark(repeats: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=200).eval()
    plain = plain_upsampling(model)
    z = torch.eye(4)[:1]
    with torch.inference_mode():
        features = model.encode(torch.rand(1, 3, 200, 200))
        return time_interleaved({"sub-pixel": lambda: model.decode(features, z),
                                 "plain": lambda: plain.decode(features, z)}, repeats)


def compile_benchmark(repeats: int) -> None:
    torch.manual_seed(0)
    model = build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=128)
    eager = training_step(model)
    compiled = training_step(model, compiled=torch.compile(model))
    start = time.perf_counter()
    compiled()  # compiles forward and backward
    compile_s = time.perf_counter() - start
    samples = time_interleaved({"eager": eager, "compiled": compiled}, repeats, warmup=1)
    ratio = paired_ratio(samples["compiled"], samples["eager"])
    saved = statistics.median(samples["eager"]) - statistics.median(samples["compiled"])
    print(f"  {'first compiled step (compiling)':40s} {compile_s:7.1f} s")
    for name, values in samples.items():
        print(f"  {name:40s} {median_ms(values):7.1f} ms")
    print(show_ratio("compiled / eager step", ratio))
    print(f"  {'compiling pays off after':40s} {compile_s / saved:7.0f} steps" if saved > 0 else
          "  compiling does not pay off: the compiled step is not faster")


# --------------------------------------------------------------------------------------------- memory

def saved_full_size_tensors(fn, full_size: int) -> int:
    """How many distinct tensors of `full_size` elements autograd saves for the backward pass of fn()."""
    pointers = set()

    def pack(t):
        if t.numel() == full_size:
            pointers.add(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return len(pointers)


def memory_report() -> None:
    b, c, h, w = LAYER_SHAPE
    x = torch.randn(b, c, h, w, requires_grad=True)
    z = torch.eye(4)[torch.randint(0, 4, (b,))]
    counts = {layer.kind: saved_full_size_tensors(lambda layer=layer: layer(x, z), b * c * h * w)
              for layer in (FiLM(c, 4), GuidingBlock(c, 4, h, w), INSIDE(c, 4))}
    print("\n(B, C, H, W) tensors kept for backward, x itself included: "
          + ", ".join(f"{kind} {n}" for kind, n in counts.items()))


def network_section(repeats: int, many: int) -> None:
    network = network_benchmark(max(5, repeats // 3))
    print(f"\nTraining step of the CLEVR-Seg encoder-decoder, 128x128, batch 32, {many} threads; {load_average()}:")
    for name, values in network.items():
        print(f"  {name:40s} {median_ms(values):7.1f} ms")
    print(show_ratio("INSIDE / no conditioning", paired_ratio(network["inside"], network["none"]), "<= 1.10"))
    print(show_ratio("plain upsampling / sub-pixel", paired_ratio(network["inside, plain upsampling"],
                                                                  network["inside"])))


def total_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Summed time over summed time: what the repeats cost in all (the throughput), outliers included."""
    return sum(numerator) / sum(denominator)


def threads_section(repeats: int, many: int, loads: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    step = training_step(build_model("encoder_decoder", conditioning="inside", cond_dim=4, image_size=128))
    for load in loads:
        with competing_load(os.cpu_count() or 1) if load == "busy" else contextlib.nullcontext():
            added = "spinning processes started" if load == "busy" else "no added load"
            # the layers alone (section 1 without its reference variants), each layer's 1- and N-thread calls
            # back to back: the target on busy cores, N threads / 1 thread <= 1 for every layer
            print(f"\nEach layer, forward + backward at {LAYER_SHAPE}, 1 and {many} threads, {load} ({added}), "
                  f"{repeats} pairs; {load_average()}:")
            switches: dict = {}
            samples = layer_benchmark(repeats, [1, many], plain=False, switches=switches)
            for name in ("film", "guideme", "inside"):
                n_thread, one = samples[(name, many)], samples[(name, 1)]
                print(show_ratio(f"{name}: {many} threads / 1 thread", paired_ratio(n_thread, one),
                                 "<= 1" if load == "busy" else "")
                      + f"   [{median_ms(one):.1f} / {median_ms(n_thread):.1f} ms; summed times "
                        f"{total_ratio(n_thread, one):.2f}; {statistics.median(switches[(name, many)]):.0f} "
                        f"voluntary context switches per {many}-thread call]")
            print(f"  ({load_average()} at the end)")
            print(f"\nThe INSIDE training step above at 1 and {many} threads, {load} ({added}); {load_average()}:")
            samples = time_interleaved({("1", 1): step, (str(many), many): step}, max(5, repeats // 3), warmup=2)
            for key, values in samples.items():
                print(f"  {key[0]} thread(s) {median_ms(values):27.1f} ms")
            print(show_ratio(f"{many} threads / 1 thread", paired_ratio(samples[(str(many), many)], samples[("1", 1)])))
            print(f"  ({load_average()} at the end)")
    torch.set_num_threads(many)


def decode_section(repeats: int, many: int) -> None:
    torch.set_num_threads(1)
    decode = decode_benchmark(repeats)
    print(f"\nDashboard decode at 200x200, one image, 1 thread, inference mode; {load_average()}:")
    for name, values in decode.items():
        print(f"  {name:40s} {median_ms(values):7.2f} ms")
    print(show_ratio("plain upsampling / sub-pixel", paired_ratio(decode["plain"], decode["sub-pixel"])))
    torch.set_num_threads(many)


# ----------------------------------------------------------------------------------------------- main

def keep_freed_memory() -> None:
    """Ask glibc to serve large tensors from memory it keeps (no mmap per tensor, no trimming), so a fresh
    full-size tensor costs no page faults: on this VM ~14 ms per 20 MB tensor, the bulk of a layer's time."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)):
        raise SystemExit("--keep-freed-memory: glibc's mallopt refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", choices=["quiet", "busy", "both"], default="both",
                        help="layer section without added load, with one spinning process per core, or both")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per variant (default 30)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"the multi-thread count (default: torch's, here {torch.get_num_threads()})")
    parser.add_argument("--compile", action="store_true", help="also time the training step under torch.compile")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc keeps freed memory for reuse (mallopt): timings without the page faults a fresh "
                             "full-size tensor costs")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    sections = set(args.only or [s for s in SECTIONS if s != "threads" and (s != "compile" or args.compile)])
    many = args.threads or torch.get_num_threads()
    thread_counts = sorted({1, many})
    cores = os.cpu_count() or 1
    print(f"torch {torch.__version__}, {cores} CPU cores, {threads.describe()}"
          + (", freed memory kept by glibc" if args.keep_freed_memory else ""))

    for load in (("quiet", "busy") if args.load == "both" else (args.load,)) if "layers" in sections else ():
        busy = load == "busy"
        with competing_load(cores) if busy else contextlib.nullcontext():
            title = f"{cores} competing spinning processes started" if busy else "no added load"
            print(f"\nOne layer, forward + backward, x of shape {LAYER_SHAPE}, {title}; {load_average()}:")
            samples = layer_benchmark(args.repeats, thread_counts)
            report_layers(samples, thread_counts, busy)
            print(f"  ({load_average()} at the end)")
    torch.set_num_threads(many)
    if "network" in sections:
        network_section(args.repeats, many)
    if "threads" in sections:
        threads_section(args.repeats, many, ("quiet", "busy") if args.load == "both" else (args.load,))
    if "decode" in sections:
        decode_section(args.repeats, many)
    if "compile" in sections:
        print(f"\ntorch.compile, the training step above, {many} threads; {load_average()}:")
        compile_benchmark(max(5, args.repeats // 3))
    if "memory" in sections:
        memory_report()


if __name__ == "__main__":
    main()
