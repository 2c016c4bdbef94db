"""Page cursors: the opaque `next_cursor` a list hands out and takes back as its cursor.

Each kind has an `encode_*` that makes the string and a `decode_*` that reads it back or
raises the one 422 every list answers for a cursor it did not hand out:
- a keyset (created_at, id): the referral list;
- a number behind a prefix naming its kind: the audit trail;
- a sealed number (AES-SIV, bound to whose list it is): the event feed and the webhook
  deliveries, so that it shows no count of anyone's events and a guessed one fails.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service import errors
from service.crypto import b64decode, b64encode
from service.i18n import msg
from service.inputs import check_instant


def invalid(name: str = "cursor") -> errors.ValidationFailed:
    """The 422 for a cursor (query parameter `name`) that this service did not hand out."""
    return errors.ValidationFailed(
        msg("{name} is not valid; pass back next_cursor exactly as received", name=name),
        [{"loc": ["query", name], "msg": msg("invalid cursor"), "type": "value_error"}],
    )


def encode_keyset(created_at: dt.datetime, row_id: uuid.UUID) -> str:
    """The position after a row in a list ordered by (created_at, id)."""
    return b64encode(json.dumps([created_at.isoformat(), str(row_id)]).encode())


def decode_keyset(text: str, name: str = "cursor") -> tuple[dt.datetime, uuid.UUID]:
    """The (created_at, id) that `encode_keyset` wrote."""
    try:
        created, row_id = json.loads(b64decode(text))
        at = dt.datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive")
        return check_instant(at), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid(name) from exc


def encode_number(prefix: str, number: int) -> str:
    """A position in a numbered list, named by `prefix` so no other list's cursor reads as one."""
    return b64encode(f"{prefix}{number}".encode())


def decode_number(text: str, prefix: str, maximum: int, name: str = "cursor") -> int:
    """The number that `encode_number` wrote with `prefix`, from 1 to `maximum`."""
    try:
        raw = b64decode(text).decode("ascii")
        if not raw.startswith(prefix):
            raise ValueError("another kind of cursor")
        number = int(raw.removeprefix(prefix))
        if not 1 <= number <= maximum:
            raise ValueError("out of range")
        return number
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid(name) from exc


# 8 bytes sealed: a 16-byte tag and the 8 bytes, 32 characters of base64.
_SEALED = re.compile(r"[A-Za-z0-9_-]{32}")


@functools.cache
def _cipher(index_key: bytes) -> AESSIV:
    # A key of its own, derived from the index key (which is never rotated, so a cursor a
    # client holds stays valid across data key rotations).
    key = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"rujukan:event-cursor"
    ).derive(index_key)
    return AESSIV(key)


def encode_sealed(index_key: bytes, number: int, scope: Sequence[str]) -> str:
    """A number sealed deterministically and bound to `scope` (whose cursor it is)."""
    sealed = _cipher(index_key).encrypt(number.to_bytes(8, "big"), [p.encode() for p in scope])
    return b64encode(sealed)


def decode_sealed(index_key: bytes, text: str, scope: Sequence[str], name: str = "cursor") -> int:
    """The number that `encode_sealed` sealed for `scope`; a changed or guessed one fails."""
    if not _SEALED.fullmatch(text):
        raise invalid(name)
    try:
        plain = _cipher(index_key).decrypt(b64decode(text), [p.encode() for p in scope])
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise invalid(name) from exc
    return int.from_bytes(plain, "big")
