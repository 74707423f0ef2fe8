"""Reading and writing 2D scans with their geometry (SimpleITK for every format).

Arrays are always ``(rows, cols)``: row 0 is the top of the picture whatever the format, so a
keypoint ``[row, col]`` means the same pixel in a NIfTI file and in a PNG of it. (MONAI's readers
return ``(x, y)``, the transpose; SimpleITK's ``GetArrayFromImage`` returns rows first.)

Writes are atomic: the file is written under a temporary name in the target folder and renamed,
so a crash never leaves half a file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from glsmonai.utils import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "Geometry", "read_image", "write_mask", "split_ext", "list_images", "mask_extension",
           "write_image", "find_partner"]

#: file endings read as images, longest first so ``.nii.gz`` wins over ``.gz``
IMAGE_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".png", ".jpg", ".jpeg", ".bmp", ".tif",
                                     ".tiff", ".dcm")


def split_ext(path: str | os.PathLike) -> tuple[str, str]:
    """Split a file name into stem and a known image extension: ``a.nii.gz`` -> ``("a", ".nii.gz")``."""
    name = Path(path).name
    for ext in IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    stem, ext = os.path.splitext(name)
    return stem, ext


def list_images(folder: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Entries of ``folder`` named like images (sorted; hidden ones skipped). Broken links and folders
    with an image's name are listed too, so that reading them reports them instead of skipping them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder not found: {folder}")
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and p.name.lower().endswith(extensions)
    )


def find_partner(folder_files: list[Path], stem: str, ext: str) -> Path | None:
    """The file named ``<stem><ext>`` among ``folder_files``, else any ``<stem>.<other ext>``, else None."""
    named = [p for p in folder_files if split_ext(p)[0] == stem]
    return next((p for p in named if split_ext(p)[1].lower() == ext.lower()), named[0] if named else None)


@dataclass
class Geometry:
    """Where the pixels of a scan lie, enough to write a mask on the same grid.

    Attributes:
        shape: ``(rows, cols)`` of the 2D array.
        spacing, origin, direction: SimpleITK image information of the file as read.
        disk_dims: dimensions of the image on disk (3 for a one-slice volume, written back as such).
        path: the file it came from.
    """

    shape: tuple[int, int]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    disk_dims: int
    path: str

    def pixel_size_mm(self) -> tuple[float, float] | None:
        """``(row, col)`` size of a pixel in mm, or ``None`` when the file does not know it.

        Unknown: formats that record no spacing (PNG, JPEG, BMP, TIFF read as 1 x 1), spacings that are
        not finite and positive, and exactly 1 x 1, which the CAMUS subset and the phantoms store for
        "not known" (no 2D OCT or echo scan has 1 mm pixels). One rule for reports and measurements.
        """
        if split_ext(self.path)[1].lower() not in _SPACING_FORMATS:
            return None
        col, row = (float(s) for s in self.spacing[:2])  # SimpleITK spacing is (x = col, y = row)
        if not (np.isfinite([row, col]).all() and row > 0 and col > 0) or (row, col) == (1.0, 1.0):
            return None
        return row, col


#: formats whose files record a pixel size
_SPACING_FORMATS = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".dcm")


def _to_grey(image: sitk.Image) -> sitk.Image:
    """Colour (vector) images to luminance; grey images unchanged."""
    n = image.GetNumberOfComponentsPerPixel()
    if n == 1:
        return image
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    if n in (3, 4):
        grey = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    else:
        grey = arr.mean(axis=-1)
    out = sitk.GetImageFromArray(grey)
    out.CopyInformation(image)
    return out


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Read a 2D scan (or a 3D file holding one slice) as a ``(rows, cols)`` float32 array.

    Args:
        path: any format SimpleITK reads (NIfTI, MetaImage, NRRD, PNG, JPEG, BMP, TIFF, DICOM).

    Returns:
        ``(array, geometry)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read, or is not 2D (nor 3D with a single slice).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        if path.is_symlink():
            raise FileNotFoundError(f"{path}: broken symbolic link (its target {os.readlink(path)} does not exist)")
        raise FileNotFoundError(f"{path}: file not found")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti(path)
    if path.suffix.lower() == ".mhd":
        _check_mhd(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown reason"
        raise ValueError(f"{path}: cannot be read as an image ({reason})") from None
    image = _to_grey(image)
    disk_dims = image.GetDimension()
    arr = sitk.GetArrayFromImage(image)
    if arr.ndim == 3 and 1 in arr.shape:
        # one slice of a volume: keep it 2D here, written back with the volume's geometry
        arr = arr.reshape([s for s in arr.shape if s != 1] if arr.shape.count(1) == 1 else arr.shape[-2:])
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a 2D image (or a 3D file with one slice), got array shape {arr.shape}")
    if min(arr.shape) < 2:
        raise ValueError(f"{path}: image of shape {arr.shape} is too small")
    if arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"{path}: {bad} pixel(s) are NaN or infinite")
    geometry = Geometry(
        shape=(int(arr.shape[0]), int(arr.shape[1])),
        spacing=tuple(image.GetSpacing()),
        origin=tuple(image.GetOrigin()),
        direction=tuple(image.GetDirection()),
        disk_dims=disk_dims,
        path=str(path),
    )
    return arr.astype(np.float32), geometry


def _check_mhd(path: Path) -> None:
    """Raise ``FileNotFoundError`` when a MetaImage header's data file (``ElementDataFile``) is missing."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "ElementDataFile" and value.strip() not in ("LOCAL", "LIST") and "%" not in value:
            data = path.parent / value.strip()
            if not data.is_file():
                raise FileNotFoundError(f"{path}: its data file {data.name} is missing")


def _check_nifti(path: Path) -> None:
    """Raise ``ValueError`` for a NIfTI file that SimpleITK would read wrongly without complaint.

    * A ``.nii.gz`` cut short reads with its missing rows as zeros. The gzip trailer's last four bytes
      hold the uncompressed size (modulo 2**32); in a cut-short file they are compressed data instead,
      so they disagree with the size the header announces.
    * ITK's NIfTI reader turns NaN pixels into 0, so float data is checked here, through nibabel.
    """
    import nibabel

    try:
        image = nibabel.load(str(path))
        header = image.header
        # the data's offset as nibabel reads it (a vox_offset of 0 means right after the header)
        expected = int(image.dataobj.offset) + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    except Exception as err:  # nibabel raises many types for a damaged header; the message names the file
        reason = str(err).replace(f"File {path} ", "").replace(str(path), "the file") or type(err).__name__
        raise ValueError(f"{path}: cannot be read as an image (not a valid NIfTI file: {reason})") from None
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            stored = int.from_bytes(handle.read(4), "little")
        if stored != expected % 2**32:
            raise ValueError(f"{path}: truncated or damaged (the gzip stream does not hold the {expected} bytes "
                             "its header announces)")
    if header.get_data_dtype().kind == "f":
        bad = int(np.size(image.dataobj) - np.count_nonzero(np.isfinite(np.asanyarray(image.dataobj))))
        if bad:
            raise ValueError(f"{path}: {bad} pixel(s) are NaN or infinite")


def mask_extension(ext: str) -> str:
    """The extension a mask is written with for an input of extension ``ext`` (lossy JPEG becomes PNG)."""
    return ".png" if ext.lower() in (".jpg", ".jpeg") else ext


def write_mask(path: str | os.PathLike, mask: np.ndarray, geometry: Geometry | None = None) -> Path:
    """Write a ``(rows, cols)`` label array with the geometry of the scan it belongs to.

    Args:
        path: output file; the format follows its extension.
        mask: integer label array, shape ``geometry.shape``.
        geometry: the source scan's geometry; ``None`` writes unit spacing at the origin.

    Returns:
        the path written.
    """
    path = Path(path)
    mask = np.asarray(mask)
    if geometry is not None and tuple(mask.shape) != tuple(geometry.shape):
        raise ValueError(f"{path}: mask shape {mask.shape} differs from the scan's {geometry.shape}")
    data = mask.astype(np.uint8)
    if geometry is not None and geometry.disk_dims == 3:
        data = data[None]
    image = sitk.GetImageFromArray(data)
    if geometry is not None:
        image.SetSpacing(geometry.spacing)
        image.SetOrigin(geometry.origin)
        image.SetDirection(geometry.direction)
    return _write_atomic(image, path)


def _write_atomic(image: sitk.Image, path: Path) -> Path:
    """Write ``image`` to ``path`` with :func:`~glsmonai.utils.atomic_write`.

    A MetaImage header (``.mhd``) names its data file (``.raw``), so that pair is first written
    under the final names in a hidden temporary folder beside ``path``; the data file is moved into
    place before its header.
    """
    compress = path.name.endswith(".gz")

    def write(tmp: Path) -> None:
        if path.suffix.lower() != ".mhd":
            sitk.WriteImage(image, str(tmp), useCompression=compress)
            return
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=path.parent) as folder:
            sitk.WriteImage(image, str(Path(folder) / path.name), useCompression=compress)
            for item in Path(folder).iterdir():
                os.replace(item, tmp if item.name == path.name else path.parent / item.name)

    return atomic_write(path, write)


def write_image(path: str | os.PathLike, array: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> Path:
    """Write a ``(rows, cols)`` uint8 scan (used by the phantom generators)."""
    path = Path(path)
    image = sitk.GetImageFromArray(np.asarray(array))
    image.SetSpacing(spacing[::-1])  # SimpleITK spacing is (x=col, y=row)
    return _write_atomic(image, path)
