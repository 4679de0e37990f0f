"""The torch side of gan-bench's cold start: a fresh process that loads the checkpoint,
generates 64 samples and saves the grid, as a user of the training stack would.

    python -m ganforge.bench.torch_cold CHECKPOINT OUT.png
"""

import sys


def main(checkpoint_path: str, out: str) -> None:
    import torch

    from ganforge.inference.render import render_grid, save_png
    from ganforge.training import checkpoint, get_variant

    state = checkpoint.load(checkpoint_path)
    G, variant, _ = checkpoint.build_generator(state)
    inputs = [torch.randn(64, G.latent_dim, generator=torch.Generator().manual_seed(0))]
    if getattr(G, "num_classes", None):  # conditional: every class in turn, as gan-bench times it
        inputs.append(torch.arange(64) % G.num_classes)
    with torch.inference_mode():
        x = G(*inputs).numpy()
    save_png(render_grid(x, get_variant(state["variant"]).kind), out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
