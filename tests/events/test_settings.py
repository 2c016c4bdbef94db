"""Dispatcher settings: where it runs by default, and a lease that outlasts a send."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings


def test_the_embedded_dispatcher_is_on_in_dev_and_off_in_prod(tmp_path: Path) -> None:
    keys = {"signing_key_file": tmp_path / "s.pem", "data_key_file": tmp_path / "d.json"}
    assert Settings(env="dev").run_embedded_dispatcher is True
    assert Settings(env="prod", **keys).run_embedded_dispatcher is False
    assert Settings(env="prod", embedded_dispatcher=True, **keys).run_embedded_dispatcher
    assert not Settings(env="dev", embedded_dispatcher=False).run_embedded_dispatcher


def test_a_lease_shorter_than_the_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="webhook_lease_seconds"):
        Settings(webhook_timeout_seconds=30, webhook_lease_seconds=20)
    assert Settings(webhook_timeout_seconds=30, webhook_lease_seconds=31).webhook_lease_seconds
