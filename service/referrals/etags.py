"""A referral version as an HTTP entity tag, and the If-Match header read back into versions."""

from __future__ import annotations

import re

# A referral's ETag is its version, quoted; versions start at 1.
_TAG = re.compile(r'"([1-9][0-9]*)"')


def etag(version: int) -> str:
    """The ETag of a referral version."""
    return f'"{version}"'


def expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The referral versions an If-Match header names: None without one (or empty), and an
    empty set when it names none (a weak, foreign or malformed tag matches no version)."""
    if not if_match:
        return None
    tags = (_TAG.fullmatch(tag.strip()) for tag in if_match.split(","))
    return frozenset(int(tag[1]) for tag in tags if tag)
