"""Opening a value that is not sealed, or sealed under an unknown key, fails without echoing it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.crypto import DataKeyring, KeyFileError


def _ring() -> DataKeyring:
    return DataKeyring(active="d1", keys={"d1": AESGCM.generate_key(bit_length=256)},
                       index_key=b"i" * 32)


def test_an_unsealed_value_is_refused_without_its_content_in_the_message() -> None:
    plain = '{"full_name": "Siti Rahayu", "nik": "3171014508900003"}. more'
    with pytest.raises(KeyFileError) as refused:
        _ring().open(plain, "referral:x:subject")
    assert "Siti" not in str(refused.value) and "3171014508900003" not in str(refused.value)


def test_an_unknown_key_id_is_named() -> None:
    sealed = _ring().seal("text", "ctx")
    other = DataKeyring(active="d2", keys={"d2": AESGCM.generate_key(bit_length=256)},
                        index_key=b"i" * 32)
    with pytest.raises(KeyFileError, match="'d1'"):
        other.open(sealed, "ctx")


def test_the_reused_cipher_still_binds_each_value_to_its_place() -> None:
    ring = _ring()
    sealed = ring.seal("Siti Rahayu", "referral:a:subject")
    assert ring.open(sealed, "referral:a:subject") == "Siti Rahayu"
    with pytest.raises(KeyFileError):
        ring.open(sealed, "referral:b:subject")
