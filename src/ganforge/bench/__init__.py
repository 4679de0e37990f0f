"""gan-bench: onnxruntime and torch backends side by side over a batch sweep.

The onnxruntime timing needs no torch; torch backends are skipped, with a note,
where torch is not installed.
"""

from ganforge.bench.run import ALL_BACKENDS, DEFAULT_BATCH_SIZES, run_bench

__all__ = ["ALL_BACKENDS", "DEFAULT_BATCH_SIZES", "run_bench"]
