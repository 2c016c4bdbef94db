"""The query parameter of a keyset-paged list: the opaque cursor a page hands out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# The `next_cursor` of the previous page, taken back as `cursor` (see service.cursors).
PageCursor = Annotated[
    str | None,
    Query(
        max_length=512,
        description="Opaque: the `next_cursor` of the previous page; left out for the first",
    ),
]
