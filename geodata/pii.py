"""Personal data (PIPL): ID number validation (GB 11643), encryption, look-up hash, masking.

ID numbers and phones are stored encrypted with Fernet keys from the environment
(settings.PII_KEYS, newest first, so keys can be rotated: see docs/configuration.md) and
a keyed HMAC-SHA256 for exact look-up. Only masked forms are stored in clear.
"""

import datetime as dt
import hashlib
import hmac
import re
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")
_PHONE_PATTERN = re.compile(r"^1[3-9][0-9]{9}$|^0[0-9]{2,3}-?[0-9]{7,8}$")


class InvalidIdNumber(ValueError):
    pass


class InvalidPhone(ValueError):
    pass


def id_number_check_char(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def normalize_id_number(raw: str) -> str:
    """Return the canonical 18-character ID number or raise InvalidIdNumber saying why."""
    value = (raw or "").strip().upper()
    if not _ID_PATTERN.match(value):
        raise InvalidIdNumber(f"身份证号应为18位（17位数字加校验位），收到 {len(value)} 位")
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(f"身份证号中的出生日期 {value[6:14]} 无效") from None
    expected = id_number_check_char(value[:17])
    if value[17] != expected:
        raise InvalidIdNumber(f"身份证号校验位错误：应为 {expected}，实为 {value[17]}")
    return value


def birth_date_from_id_number(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def normalize_phone(raw: str) -> str:
    value = re.sub(r"[\s()]", "", raw or "")
    if value.startswith("+86"):
        value = value[3:]
    if not _PHONE_PATTERN.match(value):
        raise InvalidPhone(f"电话号码格式无效：{raw!r}")
    return value


def mask_id_number(id_number: str) -> str:
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    if not phone:
        return ""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(value: str) -> str:
    if not value:
        return ""
    return _fernet(tuple(settings.PII_KEYS)).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    return _fernet(tuple(settings.PII_KEYS)).decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key (the first of settings.PII_KEYS)."""
    if not token:
        return ""
    return _fernet(tuple(settings.PII_KEYS)).rotate(token.encode()).decode()


def lookup_hash(value: str) -> str:
    return hmac.new(settings.PII_HASH_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()
