"""Sealing of personal data at rest (AES-256-GCM) and the keyed NIK search index."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

GENERATED_MARKER = "generated-for-dev"
# Where the service keeps its files by default (SQLite database, dev keys).
DEFAULT_VAR_DIR = Path("./var")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class KeyFileError(RuntimeError):
    """A key file is missing, unreadable or not acceptable in this environment."""


def b64encode(raw: bytes) -> str:
    """Unpadded URL-safe base64, as key files hold their keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The bytes of unpadded URL-safe base64."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_directory(path: Path) -> None:
    """Create `path` (and missing parents) readable by its owner only (0700).

    An existing directory is left as it is, except the default `./var`, which is the
    service's own: it is tightened to 0700 (earlier versions created it 0755). Another
    directory with wider modes is the operator's: prod warns about it at start
    (`loose_permissions`).
    """
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask: set it exactly
    elif wider_than(path, 0o700) and path.resolve() == DEFAULT_VAR_DIR.resolve():
        with suppress(OSError):  # not ours to change after all: prod warns instead
            os.chmod(path, 0o700)


def wider_than(path: Path, mode: int) -> bool:
    """True if `path` grants a permission that `mode` does not."""
    return bool(stat.S_IMODE(os.stat(path).st_mode) & ~mode)


def loose_permissions(files: list[Path]) -> list[str]:
    """Which of `files` (or their directories) others than the owner may read or enter."""
    found = []
    for file in files:
        for path, mode in ((file, 0o600), (file.parent, 0o700)):
            with suppress(OSError):
                if wider_than(path, mode) and str(path) not in found:
                    found.append(str(path))
    return found


def write_private_file(path: Path, content: str) -> None:
    """Write a secret file atomically, readable by its owner only, in a 0700 directory."""
    private_directory(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class DataKeyring:
    """Data keys by id (the active one seals), plus the HMAC key of the NIK index."""

    active: str
    keys: dict[str, bytes]
    index_key: bytes
    generated: bool = False
    # One cipher object per key, reused: building one costs as much as a decryption, and a
    # list page opens a hundred values. The objects hold only the key and are thread-safe.
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _cipher(self, kid: str) -> AESGCM:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            cipher = self._ciphers[kid] = AESGCM(self.keys[kid])
        return cipher

    @classmethod
    def load(cls, path: Path) -> DataKeyring:
        """Read a key file."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            keys = {kid: b64decode(value) for kid, value in doc["keys"].items()}
            ring = cls(
                active=doc["active"],
                keys=keys,
                index_key=b64decode(doc["index_key"]),
                generated=doc.get("origin") == GENERATED_MARKER,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"cannot read data key file {path}: {type(exc).__name__}") from exc
        if ring.active not in ring.keys or any(len(k) != 32 for k in ring.keys.values()):
            raise KeyFileError(f"data key file {path} needs 256-bit keys and a valid active id")
        if len(ring.index_key) < 32:
            raise KeyFileError(f"data key file {path} needs a 256-bit index key")
        return ring

    @classmethod
    def load_or_create(cls, path: Path, *, allow_generate: bool) -> DataKeyring:
        """Read the key file, generating one first where that is allowed (dev)."""
        if not path.exists():
            if not allow_generate:
                raise KeyFileError(f"data key file {path} does not exist")
            cls.create_file(path, generated=True)
        return cls.load(path)

    @staticmethod
    def create_file(path: Path, *, generated: bool) -> None:
        """Write a new key file (mode 0600) with one data key and an index key."""
        kid = new_key_id("d")
        doc: dict[str, Any] = {
            "active": kid,
            "keys": {kid: _new_data_key()},
            "index_key": b64encode(secrets.token_bytes(32)),
        }
        if generated:
            doc = {"origin": GENERATED_MARKER, **doc}
        write_key_document(path, doc)

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt text; `context` (e.g. 'referral:<id>:subject') binds it to its place."""
        nonce = secrets.token_bytes(12)
        ct = self._cipher(self.active).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return f"{self.active}.{b64encode(nonce + ct)}"

    def open(self, sealed: str, context: str) -> str:
        """Decrypt a value sealed by `seal` under any known key; KeyFileError for one that
        cannot be opened (an unknown key, a damaged value, another row's value)."""
        kid, _, body = sealed.partition(".")
        if kid not in self.keys:
            # Name the key only when it looks like a key id: a damaged or unsealed value must
            # not carry personal data into a log line through this message.
            shown = repr(kid) if _KEY_ID.fullmatch(kid) else "of this value"
            raise KeyFileError(f"data key {shown} is not in the key file")
        try:
            raw = b64decode(body)
            return (
                self._cipher(kid)
                .decrypt(raw[:12], raw[12:], context.encode("utf-8"))
                .decode("utf-8")
            )
        except InvalidTag as exc:
            raise KeyFileError("sealed value failed authentication") from exc
        except ValueError as exc:
            # Not base64 at all (binascii.Error is a ValueError): damaged in storage.
            raise KeyFileError("sealed value is malformed") from exc

    def nik_index(self, nik: str) -> str:
        """Keyed hash of a NIK: searchable, but useless without the key."""
        return hmac.new(self.index_key, nik.encode("ascii"), hashlib.sha256).hexdigest()


def _new_data_key() -> str:
    return b64encode(AESGCM.generate_key(bit_length=256))


def key_id_of(sealed: str) -> str:
    """The id of the data key a sealed value was sealed with."""
    return sealed.partition(".")[0]


def new_key_id(prefix: str, taken: Iterable[str] = ()) -> str:
    """A new key id: `prefix` and 8 hex digits, not among `taken`."""
    taken = set(taken)
    kid = prefix + secrets.token_hex(4)
    while kid in taken:
        kid = prefix + secrets.token_hex(4)
    return kid


def write_key_document(path: Path, doc: dict[str, Any]) -> None:
    """Write a key file's JSON document (atomically, 0600)."""
    write_private_file(path, json.dumps(doc, indent=2) + "\n")


def _read_key_document(path: Path, load: Callable[[Path], object]) -> dict[str, Any]:
    load(path)  # refuse to build on a file the service could not use
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def add_key(
    path: Path, *, load: Callable[[Path], object], prefix: str, value: Callable[[], object]
) -> str:
    """Add a new key (`value()`, under an id starting with `prefix`) to the key file that
    `load` reads, as known but not active; its id."""
    doc = _read_key_document(path, load)
    kid = new_key_id(prefix, doc["keys"])
    doc["keys"][kid] = value()
    write_key_document(path, doc)
    return kid


def activate_key(path: Path, kid: str, *, load: Callable[[Path], object], what: str) -> str:
    """Make a known key of the key file that `load` reads the active one; the id of the key
    it replaces."""
    doc = _read_key_document(path, load)
    if kid not in doc["keys"]:
        raise KeyFileError(f"{what} {kid!r} is not in the key file")
    previous: str = doc["active"]
    doc["active"] = kid
    write_key_document(path, doc)
    return previous


def add_data_key(path: Path) -> str:
    """Add a new data key to the file as known but not active; its id.

    Servers must learn a key before anything is sealed with it, or they could not open
    what other servers seal: `activate_data_key` comes only after they have reloaded.
    """
    return add_key(path, load=DataKeyring.load, prefix="d", value=_new_data_key)


def activate_data_key(path: Path, kid: str) -> str:
    """Make a known data key the one that seals; the id of the key it replaces."""
    return activate_key(path, kid, load=DataKeyring.load, what="data key")


def switch_key(
    what: str,
    add: Callable[[], str],
    activate: Callable[[str], str],
    *,
    wait_seconds: float,
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> tuple[str, str]:
    """Add a key to a key file as known but not active, wait for the running processes to
    re-read the file, make it active, and wait again; (the new key's id, the previous one's).

    Every process must know a key before anything sealed or keyed with it reaches another
    process; after the second wait, no process uses the old key for new values any more.
    """
    added = add()
    say(f"added {what} key {added} (not active yet); waiting {wait_seconds}s for servers")
    sleep(wait_seconds)
    previous = activate(added)
    say(f"{what} key {added} is active (was {previous}); waiting {wait_seconds}s for servers")
    sleep(wait_seconds)
    return added, previous
