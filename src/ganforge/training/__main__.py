"""``python -m ganforge.training`` is ``gan-train``; torchrun starts it with ``-m``:

    torchrun --nproc_per_node=2 -m ganforge.training sine --epochs 2 --device cpu

An entry script, not part of the library: it runs the command line that sits above training.
"""

from ganforge.train_cli import main

if __name__ == "__main__":
    main(prog_name="gan-train")
