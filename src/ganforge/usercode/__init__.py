"""A user's own PyTorch generator: its class, its weights, and an adapter that makes it a
ganforge :class:`~ganforge.training.variants.base.GeneratorModel`.

    G = build_module("dcgan.py:Generator", {"ngpu": 1})
    state, note = load_weights("netG_epoch_24.pth")  # "state_dict under 'netG', 'module.' prefix removed"
    load_into(G, state, "netG_epoch_24.pth")
    gen = UserGenerator(G, latent_shape=(100, 1, 1))  # z [B, 100] -> x [B, 3, 64, 64]

``classes.py`` imports and builds the class (which runs the user's file, as naming it asks),
``weights.py`` reads weights with ``torch.load(weights_only=True)`` (a whole pickled module is
refused unless ``trust_pickle``) and saved programs, ``adapter.py`` is :class:`UserGenerator`.
Every mistake is a one-line :class:`~ganforge.errors.ConfigError` that names the fix.
"""

from __future__ import annotations

from ganforge.usercode.adapter import PROBE_BATCH, UserGenerator, check_batch_independent, square_image
from ganforge.usercode.classes import MODULE, Naming, UserCodeError, build_module, load_class
from ganforge.usercode.weights import (PROGRAM_NOTES, PROGRAM_OPTIONS, SAFE_GLOBALS, STATE_KEYS, WRAPPER_PREFIXES,
                                       load_into, load_program, load_weights, program_kind)

__all__ = ["MODULE", "PROBE_BATCH", "PROGRAM_NOTES", "PROGRAM_OPTIONS", "SAFE_GLOBALS", "STATE_KEYS",
           "WRAPPER_PREFIXES", "Naming", "UserCodeError", "UserGenerator", "build_module", "check_batch_independent",
           "load_class", "load_into", "load_program", "load_weights", "program_kind", "square_image"]
