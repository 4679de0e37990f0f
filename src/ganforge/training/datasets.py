"""Image data sources, shared by every image variant.

``--data PATH`` may name:

- a folder of MNIST-format IDX files, gzipped or not (Debian's
  ``/usr/share/datasets/fashion-mnist``, or a torchvision ``<root>/MNIST/raw``);
- a CIFAR-10 python folder (``cifar-10-batches-py``, or a torchvision root holding one);
- a torchvision root to download MNIST, Fashion-MNIST or CIFAR-10 into (``download=True``);
- any folder of images, flat or in class subfolders (ImageFolder layout).

Everything is decoded once into one uint8 tensor ``[N, C, H, W]`` (a quarter of
float32's memory) plus int64 labels; the loop turns a batch into float in [-1, 1].
Corrupt image files are skipped and counted; a folder with nothing usable is an error.

Nothing a file claims sizes memory unchecked: an image's pixel count is read from its
header and checked before it is decoded (:data:`MAX_IMAGE_PIXELS`), and an IDX file's
dimensions must fit :data:`MAX_IDX_BYTES` and match what the file holds, read with a bound
(a small gzip can inflate to gigabytes).
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError, DataError, GanforgeWarning
from ganforge.limits import MAX_TRAIN_IMAGE_SIDE

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TORCHVISION_MNIST = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
INSTALL_HINT = ("offline, Fashion-MNIST installs with: apt-get install dataset-fashion-mnist "
                "(then --data /usr/share/datasets/fashion-mnist)")
# An image is decoded only when its header says it has at most this many pixels: 64 MP admits
# every camera and phone photo (sensors of 48-61 MP) and refuses what is tiny on disk and huge
# decoded (a flat 9000x9000 PNG: 80 KB, 243 MB as RGB). PIL's own refusal is at 179 MP.
MAX_IMAGE_PIXELS = 8192 * 8192
DECODE_THREADS = 8  # images decoded at once: each holds one full-size decode (JPEGs are drafted smaller)
# An IDX file's data: MNIST's and Fashion-MNIST's training images are 47 MB, EMNIST ByClass's
# 547 MB; 1 GiB admits those and refuses a header (or a gzip) that claims more.
MAX_IDX_BYTES = 1 << 30
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, MNIST's images and labels
MAX_IDX_DIMS = 4


@dataclass
class ImageData:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N] (0 where the source has no labels)
    classes: list[str]  # class names, index = label
    source: str  # what was read, for the log

    def __len__(self) -> int:
        return len(self.images)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (float input passes through)."""
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0)
    return images


# ---------------------------------------------------------------- discovery


def _find_idx(folder: Path) -> dict[str, Path] | None:
    """The train image/label IDX files in ``folder`` (plain or .gz), or None."""
    found = {}
    for stem in IDX_TRAIN:
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
            if (folder / name).is_file():
                found[stem] = folder / name
                break
    return found if len(found) == len(IDX_TRAIN) else None


def _idx_folders(root: Path, dataset: str | None) -> list[Path]:
    candidates = [root]
    names = [TORCHVISION_MNIST[dataset]] if dataset in TORCHVISION_MNIST else list(TORCHVISION_MNIST.values())
    candidates += [root / n / "raw" for n in names]
    return [c for c in candidates if c.is_dir() and _find_idx(c)]


def _cifar_folder(root: Path) -> Path | None:
    for c in (root, root / CIFAR_FOLDER):
        if c.is_dir() and any((c / b).exists() for b in (*CIFAR_BATCHES, "batches.meta")):
            return c
    return None


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def detect(path: str | Path) -> str:
    """Which kind of source ``path`` is: "idx", "cifar" or "folder"."""
    root = Path(path)
    if _idx_folders(root, None):
        return "idx"
    if _cifar_folder(root):
        return "cifar"
    return "folder"


def check_path(path: str | None, what: str) -> Path:
    if path is None:
        raise DataError(f"{what} needs --data PATH; {INSTALL_HINT}")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"the data path {path} does not exist: pass an existing folder (--data, or the data key of "
                        "a config file)")
    if not root.is_dir():
        raise DataError(f"the data path {path} is a file: pass the folder that holds the data (--data, or the data "
                        "key of a config file)")
    return root


# ---------------------------------------------------------------- MNIST format


def _read_idx(path: Path) -> torch.Tensor:
    """One IDX file (gzipped or not) as a uint8 tensor. Its header's dimensions are checked
    against MAX_IDX_BYTES before anything is allocated, and exactly that many bytes are read:
    a short file or one with more data than declared is refused."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            shape = _idx_header(path, f)
            nbytes = math.prod(shape)
            if path.suffix != ".gz" and os.fstat(f.fileno()).st_size != 4 + 4 * len(shape) + nbytes:
                raise DataError(f"{path} is not a readable IDX file (its header declares {list(shape)}, "
                                f"{nbytes:,} bytes, the file holds {os.fstat(f.fileno()).st_size:,}); is it complete?")
            data = np.empty(nbytes, np.uint8)
            got = _read_into(f, memoryview(data))
            if got < nbytes:
                raise DataError(f"{path} is not a readable IDX file (it holds {got:,} of the {nbytes:,} bytes its "
                                f"header declares); is it complete?")
            if f.read(1):
                raise DataError(f"{path} holds more data than its header declares ({list(shape)}); is it an "
                                "MNIST-format file?")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable IDX file ({type(exc).__name__}: {str(exc)[:80]}); "
                        "is it complete?") from None
    return torch.from_numpy(data).view(shape)


def _idx_header(path: Path, f) -> tuple[int, ...]:
    """The dimensions an IDX header declares (magic: 0, 0, type, number of dimensions)."""
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or not 1 <= magic[3] <= MAX_IDX_DIMS:
        raise DataError(f"{path} is not a readable IDX file (no IDX header); is it an MNIST-format file?")
    if magic[2] != IDX_UBYTE:
        raise DataError(f"{path} holds IDX type 0x{magic[2]:02x}; MNIST-format images and labels are unsigned "
                        "bytes (0x08)")
    raw = f.read(4 * magic[3])
    if len(raw) < 4 * magic[3]:
        raise DataError(f"{path} is not a readable IDX file (its header is cut short); is it complete?")
    shape = struct.unpack(f">{magic[3]}I", raw)
    if math.prod(shape) > MAX_IDX_BYTES:
        raise DataError(f"{path} declares {list(shape)}: {math.prod(shape):,} bytes, more than the "
                        f"{MAX_IDX_BYTES:,} ganforge reads from one IDX file; is it an MNIST-format file?")
    return shape


def _read_into(f, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``f`` (never more); the bytes read (fewer at the end of the file)."""
    done = 0
    while done < len(buffer):
        n = f.readinto(buffer[done:])
        if not n:
            break
        done += n
    return done


MIN_IDX_SIDE = 4  # pixels a side of the smallest IDX images trained on


def load_idx(path: str | Path, *, dataset: str | None = None, download: bool = False) -> ImageData:
    """MNIST-format data: a folder of IDX files, or a torchvision root (optionally downloaded)."""
    root = check_path(str(path), "MNIST-format data") if not download else Path(path)
    if download and dataset in TORCHVISION_MNIST:
        _download(lambda: getattr(_torchvision_datasets(), TORCHVISION_MNIST[dataset])(str(root), train=True, download=True),
                  dataset, root)
    folders = _idx_folders(root, dataset)
    if not folders:
        raise DataError(f"no MNIST-format files ({IDX_TRAIN[0]}[.gz] and {IDX_TRAIN[1]}[.gz]) in {root} "
                        f"or its MNIST/raw, FashionMNIST/raw; pass such a folder, or --download with internet; "
                        f"{INSTALL_HINT}")
    files = _find_idx(folders[0])
    images, labels = _read_idx(files[IDX_TRAIN[0]]), _read_idx(files[IDX_TRAIN[1]])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or images.dtype != torch.uint8:
        raise DataError(f"{folders[0]} holds IDX files of unexpected shapes (images {list(images.shape)}, "
                        f"labels {list(labels.shape)})")
    if len(images) == 0 or min(images.shape[1:]) < MIN_IDX_SIDE:
        raise DataError(f"{folders[0]} holds {len(images)} images of {images.shape[1]}x{images.shape[2]} pixels: "
                        f"too few or too small to train on (at least one image of {MIN_IDX_SIDE}x{MIN_IDX_SIDE}); "
                        "is it the right folder?")
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    # Fashion-MNIST has MNIST's format: it is told by its folder's name (or torchvision's FashionMNIST/raw)
    named = folders[0].parent.name if folders[0].name == "raw" else folders[0].name
    fashion = dataset == "fashion-mnist" or "fashion" in named.lower()
    names = list(FASHION_CLASSES) if fashion and n_classes <= len(FASHION_CLASSES) else [str(i) for i in range(n_classes)]
    return ImageData(images.unsqueeze(1).contiguous(), labels.long(), names[:n_classes],
                     f"{len(images)} images from {folders[0]}")


# ---------------------------------------------------------------- CIFAR-10


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles; allow only the numpy pieces they hold."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()
        data = np.asarray(entry.get("data", entry.get(b"data")), dtype=np.uint8)
        labels = list(entry.get("labels", entry.get(b"labels", [])))
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(f"data {list(data.shape)}, {len(labels)} labels")
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({str(exc)[:100]})") from None
    return data.reshape(-1, 3, 32, 32), labels


def parse_classes(classes: list[str] | tuple[str, ...], names: tuple[str, ...] = CIFAR_CLASSES) -> list[int]:
    """Class names or indices (or ``all``) -> sorted unique indices; an unknown one lists the valid names."""
    out = []
    if [str(c).strip().lower() for c in classes] == ["all"]:
        return list(range(len(names)))
    for c in classes:
        c = str(c).strip()
        if c.isdigit() and int(c) < len(names):
            out.append(int(c))
        elif c.lower() in names:
            out.append(names.index(c.lower()))
        else:
            valid = ", ".join(f"{i}={n}" for i, n in enumerate(names))
            raise ConfigError(f"unknown class {c!r}; CIFAR-10 classes: {valid}, or all")
    if not out:
        raise ConfigError("classes is empty; name at least one CIFAR-10 class, e.g. --set classes=automobile")
    return sorted(set(out))


def load_cifar(path: str | Path, *, classes: list[str] | tuple[str, ...], download: bool = False) -> ImageData:
    """CIFAR-10's five training batches, filtered to ``classes`` (names or indices)."""
    wanted = parse_classes(classes)
    root = Path(path)
    if download:
        _download(lambda: _torchvision_datasets().CIFAR10(str(root), train=True, download=True), "cifar-10", root)
    root = check_path(str(path), "CIFAR-10")
    folder = _cifar_folder(root)
    if folder is None:
        raise DataError(f"no CIFAR-10 batches ({CIFAR_FOLDER}/data_batch_1..5) in {root}; "
                        "pass that folder, or --download with internet")
    missing = [b for b in CIFAR_BATCHES if not (folder / b).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 folder {folder} is missing {', '.join(missing)}; "
                        "download it again (--download) or copy the missing batches")
    parts = [_read_cifar_batch(folder / b) for b in CIFAR_BATCHES]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts])
    keep = np.isin(labels, wanted)
    if not keep.any():
        raise DataError(f"{folder} holds no images of class {', '.join(CIFAR_CLASSES[i] for i in wanted)}")
    # relabel 0..k-1 in the order of ``wanted`` so class names stay meaningful
    remap = {c: i for i, c in enumerate(wanted)}
    kept = torch.from_numpy(np.ascontiguousarray(data[keep]))
    return ImageData(kept, torch.tensor([remap[int(c)] for c in labels[keep]], dtype=torch.int64),
                     [CIFAR_CLASSES[i] for i in wanted],
                     f"{int(keep.sum())} CIFAR-10 images ({', '.join(CIFAR_CLASSES[i] for i in wanted)}) from {folder}")


# ---------------------------------------------------------------- image folders


def _load_one(path: Path, size: tuple[int, int], mode: str) -> tuple[np.ndarray | None, str]:
    """Decode, convert, resize (shorter side) and center-crop one file: (pixels, "ok" or
    "upscaled"), or (None, "unreadable"), or (None, "WxH") for an image larger than
    MAX_IMAGE_PIXELS, which is never decoded (its header says so)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                return None, f"{img.width}x{img.height}"
            h, w = size
            upscaled = img.width < w or img.height < h
            scale = max(w / img.width, h / img.height)
            new = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
            if not upscaled:
                img.draft(mode, new)  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still at least ``new``
            img = img.convert(mode)
            if new != img.size:
                img = img.resize(new, Image.Resampling.BICUBIC if upscaled else Image.Resampling.LANCZOS)
            left, top = (img.width - w) // 2, (img.height - h) // 2
            img = img.crop((left, top, left + w, top + h))
            arr = np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError:  # over PIL's own limit (179 MP): far over ours
        return None, "over 179 megapixels"
    except (OSError, UnidentifiedImageError, ValueError):
        return None, "unreadable"
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), "upscaled" if upscaled else "ok"


GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")  # PIL modes of one colour channel


def first_image(root: Path) -> tuple[int, int, int] | None:
    """(channels, height, width) of the first readable image under ``root`` within MAX_IMAGE_PIXELS
    (from its header alone: channels 1 for a grayscale mode, else 3); None when none is."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is lower
        for f in _image_files(root):
            try:
                with Image.open(f) as img:
                    if img.width * img.height <= MAX_IMAGE_PIXELS:
                        return 1 if img.mode in GRAY_MODES else 3, img.height, img.width
            except (OSError, ValueError, Image.DecompressionBombError):
                continue
    return None


def first_image_size(root: Path) -> tuple[int, int]:
    """(height, width) of the first readable image under ``root`` (:func:`first_image`); (64, 64)
    when none is (the folder's loader then says what is wrong)."""
    first = first_image(root)
    return (first[1], first[2]) if first else (64, 64)


def load_folder(path: str | Path, *, image_size: int | tuple[int, int], channels: int) -> ImageData:
    """Every image under ``path`` (flat, or one subfolder per class), resized and center-cropped.
    Images larger than MAX_IMAGE_PIXELS are skipped, with a warning naming one."""
    from PIL import Image

    root = check_path(str(path), "an image folder")
    files = _image_files(root)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS[:4])}, ...) in {root}; "
                        "pass a folder of images, flat or one subfolder per class")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    _check_decoded_size(root, len(files), size, channels)
    mode = "L" if channels == 1 else "RGB"
    class_names = sorted({f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1})
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=min(DECODE_THREADS, os.cpu_count() or 1)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is lower, and checked first
        results = list(pool.map(lambda f: _load_one(f, size, mode), files))
    ok = [(f, arr) for f, (arr, _) in zip(files, results) if arr is not None]
    large = [(f, why) for f, (arr, why) in zip(files, results) if arr is None and why != "unreadable"]
    bad = len(files) - len(ok) - len(large)
    upscaled = sum(1 for _, why in results if why == "upscaled")
    too_large = (f"{len(large)} larger than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, the limit (e.g. "
                 f"{large[0][0].name}: {large[0][1]})" if large else "")
    if not ok:
        unreadable = f"{bad} corrupt or unsupported" if bad else ""
        raise DataError(f"none of the {len(files)} image files in {root} could be used ("
                        f"{', '.join(filter(None, [unreadable, too_large]))}); pass a folder of images"
                        + ("; downscale the large ones" if large else ""))
    if large:
        warnings.warn(GanforgeWarning(f"skipped {len(large)} of {len(files)} image files in {root}: {too_large}; "
                                      "downscale them to use them"), stacklevel=2)
    if bad:
        warnings.warn(GanforgeWarning(f"skipped {bad} of {len(files)} image files in {root} that could not be read"),
                      stacklevel=2)
    if upscaled:
        warnings.warn(GanforgeWarning(f"{upscaled} of {len(ok)} images in {root} are smaller than {size[1]}x{size[0]} "
                      "and were upscaled"), stacklevel=2)
    images = torch.from_numpy(np.stack([arr for _, arr in ok]))
    index = {c: i for i, c in enumerate(class_names)}
    labels = torch.tensor([index.get(f.relative_to(root).parts[0], 0) if len(f.relative_to(root).parts) > 1 else 0
                           for f, _ in ok], dtype=torch.int64)
    skipped = f", {bad} unreadable skipped" if bad else ""
    skipped += f", {len(large)} too large skipped" if large else ""
    return ImageData(images, labels, class_names or ["images"], f"{len(ok)} images from {root}{skipped}")


def _check_decoded_size(root: Path, n: int, size: tuple[int, int], channels: int) -> None:
    """Refuse a training size over MAX_TRAIN_IMAGE_SIDE, and decoded images that cannot fit in memory."""
    if max(size) > MAX_TRAIN_IMAGE_SIDE:
        raise DataError(f"images from {root} would train at {size[0]}x{size[1]}, more than {MAX_TRAIN_IMAGE_SIDE} a side; "
                        f"set a smaller image_size (e.g. --set image_size=64)")
    need = n * channels * size[0] * size[1]
    memory = _physical_memory()
    if memory and need > memory:
        raise DataError(f"{n:,} images of {size[0]}x{size[1]}x{channels} from {root} need {need / 1e9:,.1f} GB "
                        f"decoded, more than this machine's {memory / 1e9:,.1f} GB; set a smaller image_size or "
                        "train on fewer images")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def fit_images(data: ImageData, size: tuple[int, int] | None, channels: int | None) -> ImageData:
    """Resize (antialiased) and convert channels of in-memory images when the config asks for it."""
    images = data.images
    if channels is not None and images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        else:  # ITU-R 601 luma, as PIL's convert("L")
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if size is not None and tuple(images.shape[2:]) != tuple(size):
        images = F.interpolate(images.float(), size=tuple(size), mode="bilinear", antialias=True,
                               align_corners=False).round().clamp(0, 255).to(torch.uint8)
    return ImageData(images, data.labels, data.classes, data.source)


def load_images(path: str | None, *, what: str, size: tuple[int, int] | None = None, channels: int | None = None,
                classes: list[str] | None = None) -> ImageData:
    """Any image source ``path`` is (MNIST-format, CIFAR-10 or a folder), at its own size and
    channels unless ``size`` ([height, width]) or ``channels`` say otherwise. ``what`` names the
    run in a missing-path error; ``classes``: CIFAR-10's to keep (None: all)."""
    root = check_path(path, what)
    kind = detect(root)
    if kind == "idx":
        data = load_idx(root)
    elif kind == "cifar":
        data = load_cifar(root, classes=classes or list(CIFAR_CLASSES))
    else:
        first = first_image(root)
        data = load_folder(root, image_size=size or (first[1:] if first else (64, 64)), channels=channels or 3)
        return _loaded_as(data, first, " (the first)")
    return _loaded_as(fit_images(data, size, channels), tuple(data.images.shape[1:]))


def _loaded_as(data: ImageData, own: tuple[int, ...] | None, which: str = "") -> ImageData:
    """``data`` whose source says how its images were changed from the source's own ``own`` (C, H, W)."""
    shape = tuple(data.images.shape[1:])
    if own is None or tuple(own) == shape:
        return data
    changes = ([("grayscale" if shape[0] == 1 else "RGB")] if own[0] != shape[0] else []) + \
        (["resized"] if tuple(own[1:]) != shape[1:] else [])
    text = (f"{data.source}; {'x'.join(map(str, own))} there{which}, loaded as {'x'.join(map(str, shape))} "
            f"({', '.join(changes)})")
    return ImageData(data.images, data.labels, data.classes, text)


# ---------------------------------------------------------------- downloads


def _torchvision_datasets():
    import torchvision.datasets

    return torchvision.datasets


def _download(fetch, name: str, root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        fetch()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"could not download {name} into {root} ({type(exc).__name__}: {str(exc)[:120]}); "
                        f"without internet use a local folder; {INSTALL_HINT}") from None
