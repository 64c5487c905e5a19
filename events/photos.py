"""Checking uploaded case photos: real images only (decoded by Pillow, never trusted by name or
content type), a size limit, and the EXIF capture time and GPS position when the camera wrote them;
and keeping the photo store free of files whose case was never written.

A photo file is written before its transaction commits (a row must never name a missing file).
If the transaction then rolls back (a refused step, a lost connection at COMMIT), the file would
stay behind: personal data kept without purpose. So every file written is noted until its
transaction commits (`transaction.on_commit`, which Django drops with a rolled-back savepoint);
once no transaction is open any more (`photo_files_guarded` around the services' transactions,
the request middleware after every request) the noted files that no CasePhoto row names are
deleted. What a crash between write and clean-up leaves is removed by `photo_orphans_sweep`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import logging
import threading
import zoneinfo
from collections.abc import Iterator
from typing import IO, Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from events.models import CasePhoto

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # refuse decompression bombs well before Pillow's own limit
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 36867
_OFFSET_TIME_ORIGINAL = 36881
_DATETIME = 306


@dataclasses.dataclass(frozen=True)
class InspectedPhoto:
    data: bytes
    image_format: str
    width: int
    height: int
    sha256: str
    taken_at: dt.datetime | None
    taken_location: Point | None


def max_photo_bytes() -> int:
    return int(getattr(settings, "GRIDMGMT_PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES))


def _read_limited(file: IO[bytes], limit: int) -> bytes:
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(f"照片不能超过 {limit / 1024 / 1024:.0f} MB", code="photo_too_large")
    if not data:
        raise ValidationError("照片文件为空", code="photo_empty")
    return data


def _rational(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return value[0] / value[1]
    return float(value)


def _gps_point(gps: dict) -> Point | None:
    try:
        lat_ref, lat, lon_ref, lon = gps[1], gps[2], gps[3], gps[4]
    except KeyError:
        return None
    try:
        latitude = sum(_rational(part) / 60**i for i, part in enumerate(lat))
        longitude = sum(_rational(part) / 60**i for i, part in enumerate(lon))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if str(lat_ref).upper().startswith("S"):
        latitude = -latitude
    if str(lon_ref).upper().startswith("W"):
        longitude = -longitude
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Point(longitude, latitude, srid=4326)


def _capture_time(exif: Image.Exif) -> dt.datetime | None:
    sub = exif.get_ifd(_EXIF_IFD)
    text = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not text:
        return None
    try:
        naive = dt.datetime.strptime(str(text).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(_OFFSET_TIME_ORIGINAL)
    if offset:
        try:
            return dt.datetime.fromisoformat(f"{naive:%Y-%m-%dT%H:%M:%S}{str(offset).strip()}")
        except ValueError:
            pass
    # Cameras write local time without a zone; phones here are on China time.
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def photo_inspect(file: IO[bytes]) -> InspectedPhoto:
    """Decode the whole image and read its EXIF; ValidationError (in Chinese) when it is not a usable photo."""
    data = _read_limited(file, max_photo_bytes())
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ALLOWED_FORMATS:
                raise ValidationError("只接受 JPEG、PNG 或 WebP 格式的照片", code="photo_format")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValidationError("照片像素过大", code="photo_too_many_pixels")
            image.load()  # full decode: a truncated or corrupt file fails here
            exif = image.getexif()
            image_format = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValidationError("文件不是有效的图片", code="photo_invalid") from None
    return InspectedPhoto(
        data=data,
        image_format=image_format,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        taken_at=_capture_time(exif),
        taken_location=_gps_point(dict(exif.get_ifd(_GPS_IFD))),
    )


# --- files of transactions that did not commit -------------------------------------------------

PHOTO_FOLDER = "case_photos"
# The sweep leaves younger files alone: their transaction may still be open (its row not yet
# visible). No request or job keeps a transaction open for hours.
ORPHAN_MIN_AGE = dt.timedelta(hours=6)
_SWEEP_BATCH = 5000

_uncommitted = threading.local()  # Django's connections are per thread, and so are their transactions


def _noted() -> set[str]:
    if not hasattr(_uncommitted, "names"):
        _uncommitted.names = set()
    return _uncommitted.names


def photo_file_written(name: str | None) -> None:
    """Note a file just written to the store in the current transaction, until it commits."""
    if not name:
        return
    noted = _noted()
    noted.add(name)
    transaction.on_commit(functools.partial(noted.discard, name))


def _referenced(names: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(names), _SWEEP_BATCH):
        batch = names[start : start + _SWEEP_BATCH]
        found.update(CasePhoto.objects.filter(image__in=batch).values_list("image", flat=True))
    return found


def photo_files_discard_uncommitted() -> int:
    """Delete the noted files of transactions that did not commit; how many were deleted.

    Does nothing while a transaction is open (its outcome is not known yet). A file is deleted
    only when the database, asked afresh, has no CasePhoto row naming it: after a connection lost
    at COMMIT the outcome is unknown to the client, and a committed row keeps its file. When the
    database cannot be asked, the files stay noted for the next call (and the sweep).
    """
    noted = _noted()
    if not noted or connection.in_atomic_block:
        return 0
    names = sorted(noted)
    try:
        referenced = _referenced(names)
    except DatabaseError:
        logger.warning("photo files of a failed transaction kept for now: the database is unreachable")
        return 0
    deleted = 0
    for name in names:
        if name not in referenced and default_storage.exists(name):
            try:
                default_storage.delete(name)
            except OSError as error:  # never fail the request for it: the sweep tries again
                logger.warning("photo file %s of a failed transaction not deleted: %s", name, error)
                continue
            deleted += 1
        noted.discard(name)
    if deleted:
        logger.info("deleted %d photo file(s) of transactions that did not commit", deleted)
    return deleted


@contextlib.contextmanager
def photo_files_guarded() -> Iterator[None]:
    """Around a transaction that writes photo files: when it is over (committed, rolled back or
    failed at COMMIT), the files it wrote that no row names are deleted."""
    try:
        yield
    finally:
        photo_files_discard_uncommitted()


def _stored_files(folder: str) -> Iterator[str]:
    if not default_storage.exists(folder):
        return
    directories, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from _stored_files(f"{folder}/{directory}")


def photo_orphans_sweep(*, min_age: dt.timedelta = ORPHAN_MIN_AGE, now: dt.datetime | None = None) -> int:
    """Delete photo files older than `min_age` that no CasePhoto row names (left by a process that
    died between writing a file and cleaning up after its failed transaction); how many.

    Looks at the folders of the current and the previous month only (files are stored under
    case_photos/YYYY/MM/ of their writing): it runs every hour, and the store grows by a few
    hundred thousand files a year.
    """
    now = now or timezone.now()
    cutoff = now - min_age
    months = {f"{PHOTO_FOLDER}/{day:%Y/%m}" for day in (now, now.replace(day=1) - dt.timedelta(days=1), cutoff)}
    candidates = [
        name
        for folder in sorted(months)
        for name in _stored_files(folder)
        if default_storage.get_modified_time(name) < cutoff
    ]
    referenced = _referenced(candidates)
    orphans = [name for name in candidates if name not in referenced]
    for name in orphans:
        default_storage.delete(name)
    if orphans:
        logger.warning("deleted %d photo file(s) that no case photo names", len(orphans))
    return len(orphans)
