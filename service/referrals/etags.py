"""A referral version as an HTTP entity tag, and the If-Match header read back into versions.

If-Match follows RFC 9110 §13.1.1: `*` matches whatever version the referral is at; a list of
entity tags matches by strong comparison, so a weak tag (`W/"3"`) never matches (the service
only sends strong ones); anything that is not an entity tag (`3` without its quotes) is refused
with 400 rather than read as a tag that matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service import errors
from service.i18n import Message, msg

# What If-Match takes, for the OpenAPI document: `*`, or a list of entity tags (without commas
# inside a tag, which the service never sends and `expected_versions` would split).
_TAG_TEXT = r'(W/)?"[\x21\x23-\x2b\x2d-\x7e]*"'
IF_MATCH_PATTERN = rf"^[ \t]*(\*|{_TAG_TEXT}([ \t]*,[ \t]*{_TAG_TEXT})*)[ \t]*$"
# One member of the list: an optional weak prefix and a quoted tag (RFC 9110 §8.8.3).
_MEMBER = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
# A referral's ETag is its version, quoted; versions start at 1.
_VERSION = re.compile(r"[1-9][0-9]*")


def etag(version: int) -> str:
    """The ETag of a referral version."""
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class Precondition:
    """What an If-Match header asks of the referral's current version."""

    # The versions named by strong tags.
    versions: frozenset[int]
    # `If-Match: *`: any current version.
    any_version: bool = False
    # Weak tags were sent; they never match (strong comparison).
    weak: tuple[str, ...] = ()

    def admits(self, version: int) -> bool:
        """True if an action may proceed on the referral at `version`."""
        return self.any_version or version in self.versions

    def refusal(self, version: int) -> Message:
        """Why the precondition fails at `version`: the detail of the 412."""
        current = etag(version)
        if self.weak and not self.versions:
            return msg(
                "If-Match uses strong comparison (RFC 9110 §13.1.1), so the weak tag {weak} "
                "never matches. Send the ETag as the service gave it; the referral's current "
                "ETag is {current}.",
                weak=self.weak[0],
                current=current,
            )
        if not self.versions:
            return msg(
                "If-Match names no version of this referral. It is now at version {version} "
                "(ETag {current}). Read it again and retry.",
                version=version,
                current=current,
            )
        return msg(
            "If-Match named {sent}, but the referral has changed since: it is now at version "
            "{version} (ETag {current}). Read it again and retry.",
            sent=", ".join(etag(v) for v in sorted(self.versions)),
            version=version,
            current=current,
        )


def precondition_required() -> errors.PreconditionRequired:
    """The 428 of an action sent without If-Match."""
    return errors.PreconditionRequired(
        msg(
            "Send If-Match with the ETag of the referral version you acted on, as its ETag "
            'header gave it (e.g. If-Match: "3"), or If-Match: * to act on whatever version '
            "is current."
        )
    )


def precondition_failed(
    expected: Precondition, version: int, status: str
) -> errors.PreconditionFailed:
    """The 412 of an action whose If-Match does not admit the referral at `version`."""
    return errors.PreconditionFailed(
        expected.refusal(version), current_version=version, current_status=status
    )


def _malformed(member: str) -> errors.InvalidIfMatch:
    example = f'"{member}"' if _VERSION.fullmatch(member) else '"3"'
    return errors.InvalidIfMatch(
        msg(
            "If-Match takes the ETag exactly as the service sent it, double quotes included, "
            "e.g. If-Match: {example} (RFC 9110 §8.8.3), or * for any current version.",
            example=example,
        )
    )


def expected_versions(if_match: str | None) -> Precondition | None:
    """What an If-Match header asks for: None without one (or an empty one).

    Raises InvalidIfMatch (400) for a value that is not `*` or a list of entity tags.
    """
    if not if_match or not if_match.strip():
        return None
    if if_match.strip() == "*":
        return Precondition(frozenset(), any_version=True)
    versions: set[int] = set()
    weak: list[str] = []
    # Empty members are allowed in a list (RFC 9110 §5.6.1).
    for raw in if_match.split(","):
        member = raw.strip()
        if not member:
            continue
        tag = _MEMBER.fullmatch(member)
        if tag is None:
            raise _malformed(member)
        if tag[1]:
            weak.append(member)
        elif _VERSION.fullmatch(tag[2]):
            versions.add(int(tag[2]))
        # A well-formed tag the service never sent names no version: it just does not match.
    return Precondition(frozenset(versions), weak=tuple(weak))
