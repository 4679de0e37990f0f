"""ganforge: train GAN generators, export them faithfully, serve them lean.

This module stays import-light (no torch): ``ganforge.inference`` is loaded in
processes that never install the training stack.
"""

__version__ = "0.1.0"
