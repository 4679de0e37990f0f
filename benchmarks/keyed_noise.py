"""The cost of addressable noise: a seed's noise drawn the old way (one stream a seed,
``np.random.default_rng(seed).standard_normal`` a chunk) against keyed-blocks-v1 (a generator a
block of 1024 samples, :class:`ganforge.inference.keyed.Noise` a chunk, as generation reads it),
for 1,000,000 samples of latent 100 and 128, in the chunk sizes generation uses.

The chunk sizes are gan-infer's own (``Batching.default_batch`` for a sample of that many
values: 1024 for MNIST's 28x28, 256 for 32x32 RGB, 64 for 64x64 RGB) and a ``--batch-size 100``,
whose chunks cross the blocks' edges. Each round times each way once, taking turns (the order
reverses every round), on the process's CPU time by default; the report gives the medians and ``uptime``.

    python benchmarks/keyed_noise.py [--n 1000000] [--rounds 7] [--clock cpu|wall] [--out benchmarks/results/keyed_noise.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganforge.inference import keyed  # noqa: E402
from ganforge.inference.batches import BATCH_BYTES, MAX_BATCH  # noqa: E402

LATENTS = (100, 128)
SAMPLES = {"28x28 gray (mnist)": 784, "32x32 RGB (dcgan)": 3 * 32 * 32, "64x64 RGB (wgan-gp)": 3 * 64 * 64}
BATCH_SIZE = 100  # a user's --batch-size: chunks that cross the blocks' edges
SEED = 7


def default_batch(values: int) -> int:
    """gan-infer's chunk for a sample of ``values`` float32 values (Batching.default_batch's rule)."""
    fits = max(1, BATCH_BYTES // (values * 4))
    return min(MAX_BATCH, 1 << (fits.bit_length() - 1))


def one_stream(n: int, dim: int, chunk: int) -> float:
    """The old way: one generator a seed, a draw a chunk; its checksum, so nothing is optimized away."""
    rng = np.random.default_rng(SEED)
    total = 0.0
    for at in range(0, n, chunk):
        total += float(rng.standard_normal((min(chunk, n - at), dim), dtype=np.float32)[0, 0])
    return total


def keyed_blocks(n: int, dim: int, chunk: int) -> float:
    """keyed-blocks-v1 as generation reads it: keyed.Noise, a draw a chunk."""
    noise = keyed.Noise(SEED, dim)
    total = 0.0
    for at in range(0, n, chunk):
        total += float(noise.draw(at, min(at + chunk, n))[0, 0])
    return total


def block_floor(n: int, dim: int, chunk: int) -> float:
    """The scheme's own cost, whatever the chunks: a block's generator made and its 1024 rows drawn
    at once, no chunking code (``chunk`` is ignored)."""
    total = 0.0
    for block in range(-(-n // keyed.BLOCK)):
        rows = min(keyed.BLOCK, n - block * keyed.BLOCK)
        total += float(keyed.generator(SEED, keyed.NOISE, block).standard_normal((rows, dim), dtype=np.float32)[0, 0])
    return total


WAYS = {"one stream": one_stream, "keyed-blocks-v1": keyed_blocks, "a block at once": block_floor}


def measure(n: int, dim: int, chunk: int, rounds: int, clock) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for r in range(rounds):
        order = list(WAYS) if r % 2 == 0 else list(WAYS)[::-1]
        for name in order:
            t0 = clock()
            WAYS[name](n, dim, chunk)
            times[name].append(clock() - t0)
    return times


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK_TEXT = {"cpu": "CPU time of the process (numpy draws on one thread, so this is the work; time spent waiting "
                     "for a busy machine's cores is left out)", "wall": "wall time"}


def cases() -> list[tuple[str, int]]:
    chunks = [(f"{what}: chunk {default_batch(values)}", default_batch(values)) for what, values in SAMPLES.items()]
    return chunks + [(f"--batch-size {BATCH_SIZE}: chunk {BATCH_SIZE}", BATCH_SIZE)]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(uptime unavailable)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples a run")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each timing both ways once")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "keyed_noise.md")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (numpy draws on one thread; waiting for a busy "
                             "machine's cores is left out); wall: elapsed time")
    args = parser.parse_args()
    before = uptime()
    rows = []
    for dim in LATENTS:
        for label, chunk in cases():
            times = measure(args.n, dim, chunk, args.rounds, CLOCKS[args.clock])
            old, new, floor = (statistics.median(times[w]) for w in WAYS)
            spread = {w: (min(t), max(t)) for w, t in times.items()}
            # a round's times side by side: keyed over one stream, and the block floor over one stream
            paired = statistics.median(k / o for o, k in zip(times["one stream"], times["keyed-blocks-v1"]))
            floored = statistics.median(f / o for o, f in zip(times["one stream"], times["a block at once"]))
            rows.append((dim, label, old, new, spread, paired, floored))
            print(f"latent {dim}, {label}: one stream {old:.3f} s, keyed {new:.3f} s ({new / old:.2f}x; "
                  f"paired {paired:.2f}x; a block at once {floored:.2f}x)", flush=True)
    after = uptime()
    lines = ["# Keyed noise against one stream", "",
             f"Drawing {args.n:,} samples of noise, float32, seed {SEED}: the old way (one "
             "`np.random.default_rng(seed)` a seed, `standard_normal` a chunk) against keyed-blocks-v1 "
             "(a generator a block of 1024 samples, `keyed.Noise.draw` a chunk, as generation reads it). "
             f"Medians of {args.rounds} rounds, the ways taking turns in each (their order "
             f"reverses every round); min-max in brackets; seconds of {CLOCK_TEXT[args.clock]}. "
             f"Written by `python benchmarks/keyed_noise.py --rounds {args.rounds} --clock {args.clock}`.", "",
             f"- numpy {np.__version__}, Python {platform.python_version()}, {platform.machine()}",
             f"- uptime before: `{before}`", f"- uptime after: `{after}`", "",
             "*per round*: the median of each round's keyed time over its one-stream time (the two ran "
             "back to back, so it holds when the machine's load moves between rounds). *a block at "
             "once*: the same for the scheme's floor, each block's generator made and its 1024 rows "
             "drawn in one call with no chunking code: what keyed-blocks-v1 costs whoever implements it.",
             "", "| latent | chunk | one stream s | keyed-blocks-v1 s | keyed / one stream | per round "
             "| a block at once / one stream |", "|---|---|---|---|---|---|---|"]
    for dim, label, old, new, spread, paired, floored in rows:
        (o_lo, o_hi), (k_lo, k_hi) = spread["one stream"], spread["keyed-blocks-v1"]
        lines.append(f"| {dim} | {label} | {old:.3f} ({o_lo:.3f}-{o_hi:.3f}) | {new:.3f} ({k_lo:.3f}-{k_hi:.3f}) "
                     f"| {new / old:.2f} | {paired:.2f} | {floored:.2f} |")
    blocks = -(-args.n // keyed.BLOCK)
    extra = [(new - old) / blocks * 1e6 for _, _, old, new, *_ in rows]
    ratios = [paired for *_, paired, _ in rows]
    lines += ["", f"keyed-blocks-v1 against one stream, per round: {min(ratios):.2f}x to {max(ratios):.2f}x; "
              f"{min(extra):.0f} to {max(extra):.0f} us more a block of {keyed.BLOCK} samples: the scheme's own price "
              "for addressing samples, paid once a block whatever the chunks (making a block's generator, numpy's "
              "SeedSequence and PCG64, measures about 10 us alone; the rest was not pinned down). Where *per "
              "round* and *a block at once* agree, keyed.Noise's chunking adds nothing to it. A model's run of those 1024 samples costs far more than the "
              "noise (gan-infer makes about 95,000 mnist-mlp samples a second: benchmarks/results/streaming.md)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
