"""Personal data (PIPL): ID number validation (GB 11643), encryption, look-up hash, masking.

ID numbers and phones are stored encrypted with Fernet keys from the environment
(settings.PII_KEYS, newest first, so keys can be rotated: see docs/configuration.md) and
a keyed HMAC-SHA256 for exact look-up. Only masked forms are stored in clear.
"""

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Sequence
from functools import cache

import numpy as np
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.apps import apps
from django.conf import settings
from django.db import models

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
    if raw and _PHONE_PATTERN.fullmatch(raw):  # already canonical: most phones of an import file
        return raw
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


_FERNET_VERSION = b"\x80"
_BLOCK = 16


def encrypt_many(values: Sequence[str]) -> list[str]:
    """Fernet tokens for many values at once ("" for ""), each decryptable by `decrypt`.

    For bulk imports: cryptography's Fernet sets up a new AES context for every value, a
    quarter of the cost of encrypting a phone. A Fernet token is AES-128-CBC of the PKCS7-padded
    value under a random IV, plus an HMAC-SHA256; CBC is C_i = AES(P_i xor C_(i-1)) with
    C_0 = IV, so one AES block context enciphers the chains of the whole batch, block i of
    every value in one call. Same key (the newest), same format, a fresh IV per value.
    """
    key = base64.urlsafe_b64decode(settings.PII_KEYS[0])
    signing_key, encryption_key = key[:16], key[16:]
    present = [i for i, value in enumerate(values) if value]
    tokens = [""] * len(values)
    if not present:
        return tokens
    padded = []
    for i in present:
        data = values[i].encode()
        pad = _BLOCK - len(data) % _BLOCK
        padded.append(data + bytes([pad]) * pad)
    blocks = np.array([len(p) // _BLOCK for p in padded])
    width = int(blocks.max()) * _BLOCK
    plain = np.frombuffer(b"".join(p.ljust(width, b"\0") for p in padded), dtype=np.uint8)
    plain = plain.reshape(len(present), -1, _BLOCK)
    ivs = os.urandom(_BLOCK * len(present))
    chain = np.frombuffer(ivs, dtype=np.uint8).reshape(-1, _BLOCK).copy()
    cipher = np.zeros_like(plain)
    # ECB on single blocks is the AES block function; the chaining (CBC) is done here.
    aes = Cipher(algorithms.AES(encryption_key), modes.ECB()).encryptor()  # noqa: S305
    for round_ in range(plain.shape[1]):
        active = np.flatnonzero(blocks > round_)
        enciphered = aes.update((plain[active, round_] ^ chain[active]).tobytes())
        chain[active] = np.frombuffer(enciphered, dtype=np.uint8).reshape(-1, _BLOCK)
        cipher[active, round_] = chain[active]
    cipher_bytes = cipher.tobytes()
    header = _FERNET_VERSION + struct.pack(">Q", int(time.time()))
    for n, i in enumerate(present):
        start = n * width
        basic = header + ivs[n * _BLOCK : (n + 1) * _BLOCK] + cipher_bytes[start : start + int(blocks[n]) * _BLOCK]
        tokens[i] = base64.urlsafe_b64encode(basic + hmac.digest(signing_key, basic, "sha256")).decode()
    return tokens


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key (the first of settings.PII_KEYS)."""
    if not token:
        return ""
    return _fernet(tuple(settings.PII_KEYS)).rotate(token.encode()).decode()


def lookup_hash(value: str) -> str:
    return hmac.new(settings.PII_HASH_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


# --- the encrypted fields of the project --------------------------------------------------------

ENCRYPTED_SUFFIX = "_encrypted"


def encrypted_fields() -> dict[type[models.Model], tuple[str, ...]]:
    """Every column that holds a Fernet token, by model: the fields named `*_encrypted`.

    The name is the registration: a field that stores `encrypt(...)` is named so (the masked
    copy `*_masked`, the look-up hash `*_hash`), and key rotation (`pii_rotate`) and its test
    walk this map, so a new encrypted field in any app is rotated without being listed here.
    """
    found: dict[type[models.Model], tuple[str, ...]] = {}
    for model in apps.get_models():
        names = tuple(
            field.attname
            for field in model._meta.concrete_fields
            if field.attname.endswith(ENCRYPTED_SUFFIX) and isinstance(field, models.TextField)
        )
        if names:
            found[model] = names
    return found
