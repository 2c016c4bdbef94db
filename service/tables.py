"""The Core table behind a SQLModel table class, typed (SQLModel does not declare `__table__`)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import class_mapper
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The `Table` a `table=True` class is mapped to."""
    table = class_mapper(model, configure=False).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table
