import datetime as dt

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.test import override_settings

from geodata import pii

# A published example number with a correct check digit (GB 11643 appendix style).
VALID = "11010519491231002X"


def test_valid_id_number_is_normalised():
    assert pii.normalize_id_number(" 11010519491231002x ") == VALID
    assert pii.birth_date_from_id_number(VALID) == dt.date(1949, 12, 31)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("110105194912310021", "校验位错误：应为 X，实为 1"),
        ("11010519491331002X", "出生日期 19491331 无效"),
        ("1101051949123100", "应为18位"),
        ("11010519491231002Y", "应为18位"),
        ("", "应为18位"),
    ],
)
def test_invalid_id_numbers_are_refused_with_the_reason(raw, message):
    with pytest.raises(pii.InvalidIdNumber, match=message):
        pii.normalize_id_number(raw)


def test_masking_keeps_only_first_and_last_four():
    assert pii.mask_id_number(VALID) == "1101**********002X"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone("") == ""


def test_phone_normalisation():
    assert pii.normalize_phone("+86 138 1234 5678") == "13812345678"
    assert pii.normalize_phone("023-68881234") == "023-68881234"
    with pytest.raises(pii.InvalidPhone):
        pii.normalize_phone("12345")


def test_encryption_round_trip_hides_the_clear_text():
    token = pii.encrypt(VALID)
    assert VALID not in token
    assert pii.decrypt(token) == VALID
    assert pii.encrypt("") == "" and pii.decrypt("") == ""


def test_key_rotation_old_tokens_still_decrypt_and_rotate_to_the_new_key():
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    with override_settings(PII_KEYS=[old_key]):
        token = pii.encrypt(VALID)
    with override_settings(PII_KEYS=[new_key, old_key]):
        assert pii.decrypt(token) == VALID
        rotated = pii.rotate(token)
    with override_settings(PII_KEYS=[new_key]):
        assert pii.decrypt(rotated) == VALID
        with pytest.raises(InvalidToken):
            pii.decrypt(token)


def test_lookup_hash_is_keyed_and_stable():
    assert pii.lookup_hash(VALID) == pii.lookup_hash(VALID)
    with override_settings(PII_HASH_KEY="another-key"):
        other = pii.lookup_hash(VALID)
    assert other != pii.lookup_hash(VALID)


def test_batch_encryption_gives_ordinary_fernet_tokens_of_the_newest_key():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    # one and several AES blocks, multi-byte text, an empty value, a repeated value
    values = ["13812345678", "", "023-68123456", "x" * 16, "长" * 20, VALID, VALID, "a" * 47]
    with override_settings(PII_KEYS=[new_key, old_key]):
        tokens = pii.encrypt_many(values)
        assert [pii.decrypt(token) for token in tokens] == values
    assert tokens[1] == ""
    assert tokens[5] != tokens[6]  # a fresh IV per value: equal values do not give equal tokens
    for value, token in zip(values, tokens, strict=True):
        if value:
            assert VALID not in token
            assert Fernet(new_key.encode()).decrypt(token.encode()).decode() == value  # the newest key
            with pytest.raises(InvalidToken):
                Fernet(old_key.encode()).decrypt(token.encode())
    assert pii.encrypt_many([]) == []
