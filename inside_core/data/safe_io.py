"""Readers for untrusted image and volume files: sizes checked from the header before any pixel is decoded.

- `open_image(source, name, pixels_limit)`: a PIL image (PNG, JPEG, ...) whose width x height was
  checked against a limit of `inside_core.limits` before decoding; PIL's decompression-bomb error and
  warning become the same one-line DataError.
- `image_rgb_uint8(image)`, `image_float(image)`: pixels as arrays; 16-bit and 32-bit grey images are
  scaled by their own range (min -> 0, max -> full scale), not clipped to white.
- `inflate_gzip(data, name, max_bytes)`: gzip bytes inflated by a streaming decompressor that stops at
  `max_bytes`, so a 2 MB file inflating to 2 GiB never gets past the limit.
- `nifti_from_bytes(data, name, ...)`: NIfTI-1 or NIfTI-2 bytes (.nii or .nii.gz, an upload) as an array;
  the header's shape x dtype is checked before the data is inflated or read.
- `check_nifti_header(header, name, voxels_limit)` and `check_spacing(zooms, name)`: the checks
  themselves, shared with `inside_core.data.acdc.load_nifti`.

Every problem is a `DataError`: one line, '<file>: <problem>'.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from inside_core.data.errors import DataError
from inside_core.data.files import open_regular
from inside_core.limits import limit, over_limit

__all__ = ["open_image", "image_rgb_uint8", "image_float", "inflate_gzip", "nifti_from_bytes",
           "check_nifti_header", "check_spacing", "check_volume_file", "raw_pixel_size",
           "check_case_pixels", "GREY_WIDE_MODES"]

# PIL modes of one-channel images wider than 8 bits: scaled by their own range
GREY_WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_INFLATE_CHUNK = 1 << 16


def open_image(source: Path | bytes, name: object, pixels_limit: str = "image_pixels",
               formats: tuple[str, ...] | None = None, unreadable: str = "unreadable image") -> Image.Image:
    """The image at `source` (a path or the file's bytes), decoded, or a one-line DataError naming `name`.

    Width x height comes from the header and is checked against limit `pixels_limit` before decoding. A path
    is opened through `inside_core.data.files.open_regular` (a regular file within `image_file_bytes`).
    """
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open_regular(source, "image")
    except DataError as error:  # missing, not a regular file, too large: said of `name`
        raise DataError(name, "image file missing" if error.problem == "file missing" else error.problem) from None
    try:
        with warnings.catch_warnings(), handle:
            # our own limit is below PIL's warning threshold; its warning must not leak to the console
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
            try:
                if formats is not None and image.format not in formats:
                    raise DataError(name, f"a {image.format} image; expected {' or '.join(formats)}")
                problem = over_limit(pixels_limit, image.width * image.height)
                if problem:
                    raise DataError(name, f"image of {image.width}x{image.height} pixels: {problem}")
                image.load()
            except BaseException:
                image.close()
                raise
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(name, "image file missing") from None
    except Image.DecompressionBombError as error:  # past PIL's own, higher limit: the size is in its message
        found = _BOMB_PIXELS.search(str(error))
        pixels = int(found.group(1)) if found else math.inf
        raise DataError(name, f"image too large: {over_limit(pixels_limit, pixels) or error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(name, f"{unreadable} ({message})") from None
    return image


def _scaled_grey(image: Image.Image) -> np.ndarray:
    """A wide grey image as float64 in [0, 1]: its own minimum -> 0, maximum -> 1 (constant -> 0)."""
    array = np.asarray(image, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def image_rgb_uint8(image: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3): RGBA loses its alpha (no compositing), grey and palette images become RGB,
    16-bit grey is scaled by its own range."""
    if image.mode in GREY_WIDE_MODES:
        grey = np.round(_scaled_grey(image) * 255.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def image_float(image: Image.Image) -> np.ndarray:
    """float32 in [0, 1]: (H, W) for grey images (16-bit scaled by their own range), (H, W, 3) otherwise."""
    if image.mode in GREY_WIDE_MODES:
        return _scaled_grey(image).astype(np.float32)
    if image.mode in ("L", "LA", "1"):
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def inflate_gzip(data: bytes, name: object, max_bytes: int) -> bytes:
    """Inflate gzip `data`, stopping as soon as `max_bytes` are out: never more is held in memory.

    Returns at most `max_bytes` bytes (the caller decides whether fewer is a truncated file).
    """
    out = bytearray()
    decompressor = zlib.decompressobj(wbits=31)
    view = memoryview(data)
    position = 0
    try:
        while len(out) < max_bytes:
            if decompressor.unconsumed_tail:
                chunk = decompressor.unconsumed_tail
            elif decompressor.eof:
                # a member ended: what follows is zero padding, another member, or nothing. The member
                # may end exactly at a chunk's end (unused_data empty), so look at the input still unread
                rest = decompressor.unused_data.lstrip(b"\0")
                while not rest and position < len(view):
                    rest = bytes(view[position:position + _INFLATE_CHUNK]).lstrip(b"\0")
                    position += _INFLATE_CHUNK
                if not rest:
                    break  # end of the last member; trailing zero padding is allowed
                decompressor = zlib.decompressobj(wbits=31)  # a further gzip member
                chunk = rest
            elif position < len(view):
                chunk = view[position:position + _INFLATE_CHUNK]
                position += len(chunk)
            else:
                break  # input exhausted before the stream's end: the caller sees a short result
            out += decompressor.decompress(chunk, max_bytes - len(out))
    except zlib.error as error:
        raise DataError(name, f"not a readable gzip file ({error})") from None
    return bytes(out)


def check_nifti_header(header, name: object, voxels_limit: str = "volume_voxels",
                       bytes_limit: str | None = "volume_bytes") -> tuple[tuple[int, ...], int]:
    """(shape, bytes of the data) from a nibabel NIfTI header, refused if over `voxels_limit`, or if its
    stored bytes plus a float32 copy are over `bytes_limit`."""
    shape = tuple(int(s) for s in header.get_data_shape())
    if any(s < 0 for s in shape):
        raise DataError(name, f"NIfTI header has a negative dimension {shape}")
    voxels = math.prod(shape)  # Python ints: no overflow for any header
    shown = " x ".join(str(s) for s in shape)
    problem = over_limit(voxels_limit, voxels)
    if problem:
        raise DataError(name, f"NIfTI header claims {shown} voxels: {problem}")
    itemsize = header.get_data_dtype().itemsize
    problem = over_limit(bytes_limit, voxels * (itemsize + 4)) if bytes_limit else None
    if problem:
        raise DataError(name, f"NIfTI header claims {shown} voxels of {itemsize} bytes; reading them takes {problem}")
    return shape, voxels * itemsize


def check_spacing(zooms: tuple[float, ...], name: object) -> None:
    """DataError unless the in-plane pixel size (the first two zooms) is within the spacing limits."""
    low, high = limit("spacing_min_mm"), limit("spacing_max_mm")
    for size in zooms[:2]:
        if not (math.isfinite(size) and low <= size <= high):
            raise DataError(name, f"pixel size {size:g} mm outside the plausible range {low:g}-{high:g} mm "
                            "(INSIDE_LIMIT_SPACING_MIN_MM / INSIDE_LIMIT_SPACING_MAX_MM)")


def raw_pixel_size(first: bytes, header_size: int) -> tuple[float, float]:
    """The in-plane pixel size (pixdim[1], pixdim[2]) as the file stores it. nibabel mends a header while
    reading it (0 becomes 1 mm, a negative size its absolute value): the check must see the raw bytes."""
    order = "<" if struct.unpack("<i", first[:4])[0] == header_size else ">"
    if header_size == 348:  # NIfTI-1: float32 pixdim[8] at byte 76
        return struct.unpack(f"{order}2f", first[80:88])
    return struct.unpack(f"{order}2d", first[112:128])  # NIfTI-2: float64 pixdim[8] at byte 104


def check_volume_file(path: Path) -> None:
    """DataError unless `path` is a regular file within the `volume_bytes` limit whose NIfTI header stores a
    plausible pixel size (before nibabel mends it). Called before nibabel opens the file."""
    with open_regular(path, "volume") as handle:
        start = handle.read(1 << 20)
    try:
        first = inflate_gzip(start, path, 540) if start[:2] == b"\x1f\x8b" else start[:540]
        _, _, header_size = _nifti_classes(first, path)
    except DataError:
        return  # not a NIfTI header at all: nibabel's reading says so, as for any damaged file
    if len(first) >= header_size:
        check_spacing(raw_pixel_size(first, header_size), path)


def check_case_pixels(num_slices: int, size: tuple[int, int], name: object) -> None:
    """DataError if `num_slices` slices at `size` (H, W) exceed the `case_pixels` limit: what a case becomes
    once resized. The stored volume is bounded by `volume_voxels`, but 10^6 slices of 1 x 1 pixels each
    resized to 128 x 128 are 16 G pixels."""
    pixels = int(num_slices) * int(size[0]) * int(size[1])
    problem = over_limit("case_pixels", pixels)
    if problem:
        raise DataError(name, f"{num_slices:,} slices of {size[0]}x{size[1]} pixels once resized: {problem}")


def _nifti_classes(first: bytes, name: object) -> tuple:
    """(image class, header class, header size) for NIfTI-1 (348-byte header) or NIfTI-2 (540)."""
    import nibabel as nib

    if len(first) >= 4:
        for order in "<>":
            size = struct.unpack(f"{order}i", first[:4])[0]
            if size == 348:
                return nib.Nifti1Image, nib.Nifti1Header, 348
            if size == 540:
                return nib.Nifti2Image, nib.Nifti2Header, 540
    raise DataError(name, "not a readable NIfTI volume (no NIfTI-1 or NIfTI-2 header)")


def nifti_from_bytes(data: bytes, name: object, voxels_limit: str = "upload_voxels",
                     inflated_limit: str = "upload_inflated_bytes") -> tuple[np.ndarray, tuple[float, ...]]:
    """(float32 array with the header's scaling, zooms) of NIfTI-1 or NIfTI-2 bytes (.nii, or .nii.gz by its
    magic number); a 4-D or longer volume gives its first 3-D frame only.

    Checked before anything is inflated or read: the header's shape x dtype (of what is read) against
    `voxels_limit`, the bytes to inflate against `inflated_limit`, the pixel size against the spacing limits.
    """
    from nibabel.volumeutils import apply_read_scaling, array_from_file

    gzipped = data[:2] == b"\x1f\x8b"
    first = inflate_gzip(data, name, 540) if gzipped else data[:540]
    _, header_class, header_size = _nifti_classes(first, name)
    if len(first) < header_size:
        raise DataError(name, f"truncated NIfTI: {len(first)} bytes, the header alone needs {header_size}")
    check_spacing(raw_pixel_size(first, header_size), name)  # before nibabel mends 0 or negative sizes
    try:
        header = header_class.from_fileobj(io.BytesIO(first[:header_size]))
        shape = tuple(int(s) for s in header.get_data_shape())
        dtype = header.get_data_dtype()
        zooms = tuple(float(z) for z in header.get_zooms())
        slope, inter = header.get_slope_inter()
        offset = max(int(header.get("vox_offset", header_size)), header_size)
    except Exception as error:  # nibabel's header checks raise several types
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(name, f"unreadable NIfTI header ({message})") from None
    if len(shape) > 3:  # only the first frame is used: it is the first prod(shape[:3]) voxels (Fortran order)
        shape = shape[:3]
    voxels = math.prod(shape)
    problem = over_limit(voxels_limit, voxels)
    if problem:
        raise DataError(name, f"NIfTI header claims {' x '.join(map(str, shape))} voxels: {problem}")
    check_spacing(zooms, name)
    needed = offset + voxels * dtype.itemsize
    problem = over_limit(inflated_limit, needed)
    if problem:
        raise DataError(name, f"NIfTI data needs {needed:,} bytes: {problem}")
    raw = inflate_gzip(data, name, needed) if gzipped else data[:needed]
    if len(raw) < needed:
        raise DataError(name, f"truncated NIfTI: {len(raw):,} bytes, the header says {needed:,}")
    try:
        array = array_from_file(shape, dtype, io.BytesIO(raw), offset)
        array = np.asarray(apply_read_scaling(array, slope, inter), dtype=np.float32)
    except Exception as error:  # odd dtypes (RGB, complex) and the like: one line
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(name, f"not a readable NIfTI volume ({message})") from None
    return array, zooms
