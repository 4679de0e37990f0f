"""``python -m ganforge.serve``: the same as ``gan-serve``."""

from ganforge.serve.cli import main

if __name__ == "__main__":
    main()
