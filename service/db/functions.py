"""SQL functions whose SQL differs between the databases, compiled for each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, cast, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class seconds_between(FunctionElement[int]):  # noqa: N801 - used as an SQL function
    """The whole seconds from one UTC timestamp to another (rounded)."""

    type = BigInteger()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text; julianday() reads them as days.
    start, end = element.clauses
    days = func.julianday(end) - func.julianday(start)
    return compiler.process(cast(func.round(days * 86400), BigInteger), **kw)


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = element.clauses
    seconds = func.extract("epoch", end - start)
    return compiler.process(cast(func.round(seconds), BigInteger), **kw)
