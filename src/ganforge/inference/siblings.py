"""The artifacts beside a model that a reader picks in its place (``generator.int8.onnx`` for
``--precision int8``, gan-bench's ``generator.fp16.onnx`` and ``generator.ts`` peers): each must come from
the checkpoint the model comes from, or it would serve another checkpoint's weights under the
model's name. gan-export writes ``ganforge.source_checkpoint_sha256`` into every artifact
(docs/architecture.md, "ONNX metadata"); a sibling is used only when its digest is the model's.

torch-free: an ONNX file's digest is read from its top level (:func:`~ganforge.inference.metadata.read_props`),
the graph unread; a TorchScript file's from its zip archive, nothing in it loaded.
"""

from __future__ import annotations

import os

from ganforge.errors import printable
from ganforge.inference.metadata import SOURCE_SHA256, read_props

UNREADABLE = object()  # source_of: the file cannot be read as the artifact it is named
TORCH_EXTRA = "/extra/" + SOURCE_SHA256  # the digest in a TorchScript or .pt2 file's zip archive
MAX_EXTRA_BYTES = 256  # a digest: 64 hex digits


def source_of(path: str | os.PathLike[str]):
    """The ``source_checkpoint_sha256`` an artifact records: an ONNX file in its metadata, a TorchScript
    or ``.pt2`` file (any other name) in the extra file torch keeps in its zip archive. None when it
    records none (a model ganforge did not export from a checkpoint); :data:`UNREADABLE` when the
    file cannot be read as such."""
    if os.fspath(path).endswith(".onnx"):
        props = read_props(path, {SOURCE_SHA256})
        return UNREADABLE if props is None else props.get(SOURCE_SHA256)
    import zipfile

    try:  # torch.jit.save and torch.export.save keep extra files as <archive>/extra/<name>
        with zipfile.ZipFile(path) as archive:
            member = next((m for m in archive.infolist() if m.filename.endswith(TORCH_EXTRA)), None)
            if member is None:
                return None
            if member.file_size > MAX_EXTRA_BYTES:
                return UNREADABLE
            return archive.read(member).decode("utf-8")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, ValueError, EOFError, NotImplementedError):
        return UNREADABLE


def _short(sha) -> str:
    return f"{printable(sha[:12])}..." if isinstance(sha, str) and len(sha) > 12 else printable(sha)


def differs(want, got, sibling: str | os.PathLike[str], model: str | os.PathLike[str]) -> str | None:
    """Why ``sibling``, whose source digest is ``got``, is not ``model``'s (digest ``want``), as the end of
    a sentence; None when they come from the same checkpoint (or neither says which, as a user's own
    pair of files may not)."""
    sibling, model = printable(str(sibling)), printable(str(model))
    if got is UNREADABLE:
        return f"{sibling} cannot be read to tell which checkpoint it comes from"
    if want is UNREADABLE:
        return f"{model} cannot be read to tell which checkpoint it comes from, so {sibling} is not known to be its"
    if want == got:
        return None
    if got is None:
        return f"{sibling} does not say which checkpoint it comes from, and {model} comes from {_short(want)}"
    if want is None:
        return f"{sibling} comes from checkpoint {_short(got)}, and {model} from none that it names"
    return f"{sibling} comes from another checkpoint than {model} ({_short(got)}, not {_short(want)})"


def mismatch(model: str | os.PathLike[str], sibling: str | os.PathLike[str]) -> str | None:
    """:func:`differs` for two ONNX files: None when ``sibling`` comes from ``model``'s checkpoint."""
    return differs(source_of(model), source_of(sibling), sibling, model)

