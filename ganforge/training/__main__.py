"""``python -m ganforge.training`` is ``gan-train``; torchrun starts it with ``-m``:

    torchrun --nproc_per_node=2 -m ganforge.training sine --epochs 2 --device cpu

An entry script, not part of the library: it runs the command line (``cli.py``) that sits above it.
"""

from ganforge.training.cli import main

if __name__ == "__main__":
    main(prog_name="gan-train")
