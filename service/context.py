"""What a running service holds: settings, database, keys. Built once per app or command."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from service.audit.keys import SESSION_KEY as AUDIT_KEYS_SESSION_KEY
from service.audit.keys import AuditKeyring
from service.auth.clients import token_cutoffs
from service.auth.issuers import TrustedIssuers
from service.auth.keys import KeySet, load_keyset, load_or_create_keyset
from service.auth.revocation import RevokedClients
from service.auth.token_cache import VerifiedTokenCache
from service.config import Settings
from service.crypto import DataKeyring, KeyFileError, loose_permissions
from service.db import Database

# How long a process may keep using key files it has read before it checks them again.
# `rujukan keys rotate-data` waits longer than this between its steps.
KEY_RELOAD_SECONDS = 2.0
AGENCY_CACHE_SECONDS = 60.0

FileStamp = tuple[int, int, int]
log = logging.getLogger("rujukan")
T = TypeVar("T")


def _stamp(path: Path) -> FileStamp:
    # The inode as well as the time: key files are replaced (os.replace), never edited
    # in place, and two writes can fall into the same mtime tick.
    info = os.stat(path)
    return (info.st_mtime_ns, info.st_ino, info.st_size)


class ReloadingFile(Generic[T]):
    """A value read from a key file, read again shortly after the file is replaced.

    A half-written, missing or refused file never takes the service down: the value already
    loaded stays in use.
    """

    def __init__(self, path: Path, load: Callable[[Path], T], value: T) -> None:
        self.path = path
        self._load = load
        self._value = value
        self._stamp = _stamp(path)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def get(self) -> T:
        """The current value, checking the file at most every KEY_RELOAD_SECONDS."""
        now = time.monotonic()
        if now - self._checked < KEY_RELOAD_SECONDS:
            return self._value
        with self._lock:
            self._checked = now
            try:
                stamp = _stamp(self.path)
                if stamp != self._stamp:
                    self._value = self._load(self.path)
                    self._stamp = stamp
            except (OSError, KeyFileError):
                pass
        return self._value


@dataclass
class ServiceContext:
    """Shared, thread-safe state of one process."""

    settings: Settings
    db: Database
    _keyring: ReloadingFile[DataKeyring]
    _keyset: ReloadingFile[KeySet]
    _audit_keys: ReloadingFile[AuditKeyring]
    trusted_issuers: TrustedIssuers = field(default_factory=lambda: TrustedIssuers([]))
    verified_tokens: VerifiedTokenCache = field(default_factory=VerifiedTokenCache)
    revoked_clients: RevokedClients = field(init=False)
    _agencies: frozenset[str] = frozenset()
    _agencies_read: float = float("-inf")

    def __post_init__(self) -> None:
        self.revoked_clients = RevokedClients(self.read_token_cutoffs)

    def read_token_cutoffs(self) -> dict[str, float]:
        """The clients whose tokens were cut off (revoked, or their secret rotated)."""
        with self.db.autocommit() as session:
            return token_cutoffs(session)

    @classmethod
    def build(cls, settings: Settings) -> ServiceContext:
        """Load (in dev, create) the keys and connect the database."""
        allow_generate = settings.is_dev
        keyset = load_or_create_keyset(settings.signing_key_path, allow_generate=allow_generate)
        keyring = DataKeyring.load_or_create(settings.data_key_path, allow_generate=allow_generate)
        audit_keys = AuditKeyring.load_or_create(
            settings.audit_key_path, allow_generate=allow_generate
        )
        if not settings.is_dev and (keyset.generated or keyring.generated or audit_keys.generated):
            raise KeyFileError("prod refuses keys that were generated for development")

        def refuse_generated(load: Callable[[Path], T]) -> Callable[[Path], T]:
            def checked(path: Path) -> T:
                loaded = load(path)
                if not settings.is_dev and getattr(loaded, "generated", False):
                    raise KeyFileError("prod refuses keys that were generated for development")
                return loaded

            return checked

        if not settings.is_dev:
            key_files = [settings.signing_key_path, settings.data_key_path, settings.audit_key_path]
            loose = loose_permissions(key_files)
            if loose:
                log.warning(
                    "key files or their directories are open to other users: %s; "
                    "make the files 0600 and their directories 0700",
                    ", ".join(loose),
                )
        audit = ReloadingFile(
            settings.audit_key_path, refuse_generated(AuditKeyring.load), audit_keys
        )
        return cls(
            settings=settings,
            db=Database(
                settings.database_url,
                session_info={AUDIT_KEYS_SESSION_KEY: audit.get},
                **settings.pool_options(),
            ),
            _keyring=ReloadingFile(
                settings.data_key_path, refuse_generated(DataKeyring.load), keyring
            ),
            _keyset=ReloadingFile(settings.signing_key_path, load_keyset, keyset),
            _audit_keys=audit,
            trusted_issuers=TrustedIssuers(settings.trusted_issuers),
        )

    @property
    def keyset(self) -> KeySet:
        """The signing keys, re-read shortly after `rujukan keys rotate` changes the file."""
        return self._keyset.get()

    @property
    def keyring(self) -> DataKeyring:
        """The data keys, re-read shortly after `rujukan keys rotate-data` changes the file."""
        return self._keyring.get()

    @property
    def audit_keys(self) -> AuditKeyring:
        """The audit keys, re-read shortly after `rujukan keys rotate-audit` changes the file."""
        return self._audit_keys.get()

    def known_agencies(self) -> frozenset[str]:
        """Agency codes, re-read from the database at most once a minute."""
        from service.taxonomy import repository as taxonomy

        now = time.monotonic()
        if now - self._agencies_read >= AGENCY_CACHE_SECONDS:
            with self.db.reader() as session:
                self._agencies = taxonomy.all_agency_codes(session)
            self._agencies_read = now
        return self._agencies
