"""What a running service holds: settings, database, keys. Built once per app or command."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from service.auth.issuers import TrustedIssuers
from service.auth.keys import KeySet, load_keyset, load_or_create_keyset
from service.config import Settings
from service.crypto import DataKeyring, KeyFileError
from service.db import Database

# How long a process may keep using key files it has read before it checks them again.
# `rujukan keys rotate-data` waits longer than this between its steps.
KEY_RELOAD_SECONDS = 2.0
AGENCY_CACHE_SECONDS = 60.0

FileStamp = tuple[int, int, int]


def _stamp(path: Path) -> FileStamp:
    # The inode as well as the time: key files are replaced (os.replace), never edited
    # in place, and two writes can fall into the same mtime tick.
    info = os.stat(path)
    return (info.st_mtime_ns, info.st_ino, info.st_size)


@dataclass
class ServiceContext:
    """Shared, thread-safe state of one process."""

    settings: Settings
    db: Database
    _keyring: DataKeyring
    _keyset: KeySet
    _keyset_stamp: FileStamp | None = None
    _keyset_checked: float = 0.0
    _keyring_stamp: FileStamp | None = None
    _keyring_checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    trusted_issuers: TrustedIssuers = field(default_factory=lambda: TrustedIssuers([]))
    _agencies: frozenset[str] = frozenset()
    _agencies_read: float = float("-inf")

    @classmethod
    def build(cls, settings: Settings) -> ServiceContext:
        """Load (in dev, create) the keys and connect the database."""
        allow_generate = settings.is_dev
        keyset = load_or_create_keyset(settings.signing_key_path, allow_generate=allow_generate)
        keyring = DataKeyring.load_or_create(settings.data_key_path, allow_generate=allow_generate)
        if not settings.is_dev and (keyset.generated or keyring.generated):
            raise KeyFileError("prod refuses keys that were generated for development")
        ctx = cls(
            settings=settings,
            db=Database(settings.database_url),
            _keyring=keyring,
            _keyset=keyset,
            trusted_issuers=TrustedIssuers(settings.trusted_issuers),
        )
        now = time.monotonic()
        ctx._keyset_stamp = _stamp(settings.signing_key_path)
        ctx._keyset_checked = now
        ctx._keyring_stamp = _stamp(settings.data_key_path)
        ctx._keyring_checked = now
        return ctx

    @property
    def keyset(self) -> KeySet:
        """The signing keys, re-read shortly after `rujukan keys rotate` changes the file."""
        now = time.monotonic()
        if now - self._keyset_checked < KEY_RELOAD_SECONDS:
            return self._keyset
        with self._lock:
            self._keyset_checked = now
            path = self.settings.signing_key_path
            try:
                stamp = _stamp(path)
                if stamp != self._keyset_stamp:
                    self._keyset = load_keyset(path)
                    self._keyset_stamp = stamp
            except (OSError, KeyFileError):
                # A half-written or missing file must not take the service down:
                # keep serving with the keys already loaded.
                pass
        return self._keyset

    @property
    def keyring(self) -> DataKeyring:
        """The data keys, re-read shortly after `rujukan keys rotate-data` changes the file."""
        now = time.monotonic()
        if now - self._keyring_checked < KEY_RELOAD_SECONDS:
            return self._keyring
        with self._lock:
            self._keyring_checked = now
            path = self.settings.data_key_path
            try:
                stamp = _stamp(path)
                if stamp != self._keyring_stamp:
                    loaded = DataKeyring.load(path)
                    if not self.settings.is_dev and loaded.generated:
                        raise KeyFileError("prod refuses keys that were generated for development")
                    self._keyring = loaded
                    self._keyring_stamp = stamp
            except (OSError, KeyFileError):
                # As for the signing keys: keep the data keys already loaded.
                pass
        return self._keyring

    def known_agencies(self) -> frozenset[str]:
        """Agency codes, re-read from the database at most once a minute."""
        from service.taxonomy.models import Agency

        now = time.monotonic()
        if now - self._agencies_read >= AGENCY_CACHE_SECONDS:
            with self.db.reader() as session:
                self._agencies = frozenset(session.execute(select(Agency.code)).scalars())
            self._agencies_read = now
        return self._agencies
