"""Checking uploaded case photos: real images only (decoded by Pillow, never trusted by name or
content type), a size limit, and the EXIF capture time and GPS position when the camera wrote them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import zoneinfo
from typing import IO, Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError

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
