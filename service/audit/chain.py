"""The audit chain's links: what an entry's hash covers, and how new entries follow the head."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from service.audit.keys import AuditKeyring

GENESIS = "0" * 64


def _message(values: Mapping[str, Any]) -> bytes:
    """What an entry's hash covers: its previous hash, then its content as canonical JSON."""
    referral_id = values["referral_id"]
    content = {
        "id": values["id"],
        "occurred_at": values["occurred_at"].isoformat(),
        "agency": values["agency"],
        "client_id": values["client_id"],
        "action": values["action"],
        "referral_id": str(referral_id) if referral_id else None,
        "request_id": values["request_id"],
        "detail": values["detail"],
        "detail_sealed": values["detail_sealed"],
        "prev_hash": values["prev_hash"],
    }
    if values["key_id"] is not None:
        # Entries written before the chain was keyed have neither (their hash is unchanged).
        content["key_id"] = values["key_id"]
        content["agency_seq"] = values["agency_seq"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return str(values["prev_hash"]).encode("ascii") + canonical.encode("utf-8")


def hash_of(values: Mapping[str, Any], keys: AuditKeyring | None) -> str:
    """The hash an entry with these column values must carry: HMAC-SHA256 under the audit
    key it names (in `keys`; an unknown one raises KeyFileError), or plain SHA-256 for an
    entry written before the chain was keyed (no key id)."""
    if values["key_id"] is None:
        return hashlib.sha256(_message(values)).hexdigest()
    if keys is None:
        raise ValueError("a keyed entry needs the audit keys")
    return keys.mac(values["key_id"], _message(values))


def link(
    entries: list[dict[str, Any]], heads: Mapping[str | None, Any], keys: AuditKeyring
) -> list[dict[str, Any]]:
    """`entries` numbered, linked and keyed after the chain's head as `heads` found it:
    for each agency of the entries, a row (last id, last hash, the agency's last number)
    or None for an empty trail."""
    first = next(iter(heads.values()))
    last_id, last_hash = (first[0], first[1]) if first else (0, GENESIS)
    seqs = {agency: (row[2] if row else None) or 0 for agency, row in heads.items()}
    rows = []
    for values in entries:
        agency = values["agency"]
        seq = None
        if agency is not None:
            seq = seqs[agency] = seqs[agency] + 1
        last_id += 1
        row = {
            **values, "id": last_id, "prev_hash": last_hash, "key_id": keys.active,
            "agency_seq": seq,
        }  # fmt: skip
        row["hash"] = last_hash = hash_of(row, keys)
        rows.append(row)
    return rows
