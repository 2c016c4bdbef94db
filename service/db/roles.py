"""PostgreSQL roles: an owner that migrates, and the service's role that cannot rewrite the
audit trail.

`rujukan migrate` runs the migrations as the role of RUJUKAN_MIGRATION_DATABASE_URL, which
owns the tables, and then grants the service's role (the user of RUJUKAN_DATABASE_URL) what
the service does with each table of the models, and nothing more. On the audit trail that is
reading and appending: without UPDATE, DELETE or TRUNCATE, and without owning the table or
its schema, the role can neither change an entry nor disable, alter or drop what protects
them. A role that could (a superuser, an owner) is refused in prod.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Table, create_engine, exc, text
from sqlalchemy.pool import NullPool

from service.audit.models import AuditEntry
from service.db.engines import is_sqlite
from service.db.migrations import Revisions, upgrade_to_head
from service.models import metadata
from service.tables import table_of

if TYPE_CHECKING:
    from service.config import Settings

# What the service does with its tables: it reads, adds, changes and removes rows (purges,
# webhook subscriptions, idempotency records). DELETE is not withheld where the service only
# updates: UPDATE already lets a role overwrite every value of a row. Never TRUNCATE,
# TRIGGER or REFERENCES.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# The one exception: audit entries are only read and appended.
AUDIT_TABLE = table_of(AuditEntry)
AUDIT_PRIVILEGES = ("SELECT", "INSERT")
# What the service's role must not hold on the audit trail, by grant, membership or PUBLIC.
_FORBIDDEN_ON_AUDIT = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
# Alembic's own table: /readyz reads the schema's revision from it.
VERSION_TABLE = "alembic_version"
_INSUFFICIENT_PRIVILEGE = "42501"

_LOGIN = text("SELECT current_user, current_database()")
# Whether a role is a superuser, a member of the audit table's owner (ownership lets it
# disable the triggers, alter or drop the table) or of its schema's owner (who may drop any
# table in it). Before the first migration, the schema the migrations will create it in.
_POWERS = text(
    "SELECT r.rolname, r.rolsuper,"
    " COALESCE(pg_has_role(r.oid, c.relowner, 'MEMBER'), false),"
    " COALESCE(pg_has_role(r.oid, n.nspowner, 'MEMBER'), false)"
    " FROM pg_roles r"
    " LEFT JOIN pg_class c ON c.oid = to_regclass(:table)"
    " LEFT JOIN pg_namespace n"
    " ON n.oid = COALESCE(c.relnamespace, to_regnamespace(current_schema()))"
    " WHERE r.rolname = COALESCE(:role, current_user)"
)
_HELD = text(
    "SELECT privilege FROM unnest(CAST(:privileges AS text[])) AS privilege"
    " WHERE has_table_privilege(:role, :table, privilege)"
)
_SCHEMA = text(
    "SELECT current_schema(), has_schema_privilege('public', current_schema(), 'CREATE'),"
    " pg_has_role(current_user, n.nspowner, 'MEMBER')"
    " OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    " FROM pg_namespace n WHERE n.nspname = current_schema()"
)


class RoleError(Exception):
    """A database role that must not be used so; the message is one line for the operator."""


@dataclass(frozen=True)
class Login:
    """Who a database URL logs in as."""

    role: str
    database: str


def table_privileges(table: Table) -> Sequence[str]:
    """The privileges the service's role gets on a table of the models."""
    return AUDIT_PRIVILEGES if table is AUDIT_TABLE else TABLE_PRIVILEGES


def login_of(url: str) -> Login:
    """The role and database a PostgreSQL URL logs in as (one short connection)."""
    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            role, database = conn.execute(_LOGIN).one()
    finally:
        engine.dispose()
    return Login(role, database)


def audit_threat(connection: Connection, role: str | None = None) -> str | None:
    """Why `role` (default: the connected one) could rewrite the audit trail, or None."""
    row = connection.execute(_POWERS, {"table": AUDIT_TABLE.name, "role": role}).one_or_none()
    if row is None:
        return None
    name, superuser, owns_table, owns_schema = row
    # Owning through a role one belongs to is owning: SET ROLE is a statement away.
    who, table = f"the database role {name!r}", AUDIT_TABLE.name
    if superuser:
        return f"{who} is a superuser"
    if owns_table:
        return f"{who} owns the table {table} (or belongs to its owner)"
    if owns_schema:
        return f"{who} owns the schema of the table {table}"
    return None


def refusal(threat: str) -> str:
    """The one-line refusal of a role that could rewrite the audit trail, naming the fix."""
    return (
        f"{threat}, so the service could rewrite the audit trail: serve as a role that owns "
        "nothing, and run `rujukan migrate` with RUJUKAN_MIGRATION_DATABASE_URL set to the "
        "owner's URL (docs/deploying.md, steps 3 and 8)"
    )


def serving_role_warning(settings: Settings, engine: Engine) -> str | None:
    """PostgreSQL: when the service's role could rewrite the audit trail, raise RoleError in
    prod; in dev, the warning to show."""
    if is_sqlite(engine):
        return None
    with engine.connect() as conn:
        threat = audit_threat(conn)
    if threat is None:
        return None
    if not settings.is_dev:
        raise RoleError(refusal(threat))
    return f"{refusal(threat)}; prod refuses to start so"


def grant_service_role(connection: Connection, role: str) -> list[str]:
    """Give `role` the privileges of `table_privileges` on every table of the models, SELECT
    on Alembic's, USAGE on the sequences and the schema, and nothing more (idempotent: each
    run first revokes what it grants); warnings for the operator.

    Run as the owner of the tables, in one transaction: the service sees the old grants or
    the new ones, never none. After every upgrade, under the migration lock, rather than as
    the owner's default privileges: those would reach any table the owner creates (by hand
    too), and give a new table the common grants before knowing what it is.
    """
    threat = audit_threat(connection, role)
    if threat is not None:
        raise RoleError(refusal(threat))
    preparer = connection.dialect.identifier_preparer
    grantee = preparer.quote(role)
    schema, public_creates, owns_schema = connection.execute(_SCHEMA).one()
    in_schema = preparer.quote(schema)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {in_schema} FROM {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {in_schema} FROM {grantee}",
        f"GRANT USAGE ON SCHEMA {in_schema} TO {grantee}",
    ]
    granted = [(preparer.format_table(t), table_privileges(t)) for t in metadata.sorted_tables]
    granted.append((preparer.quote(VERSION_TABLE), ("SELECT",)))
    for table, privileges in granted:
        # What PUBLIC holds, every role holds: the service's role included.
        statements.append(f"REVOKE ALL ON {table} FROM PUBLIC")
        statements.append(f"GRANT {', '.join(privileges)} ON {table} TO {grantee}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {in_schema} TO {grantee}")
    warnings = []
    if owns_schema:
        # PostgreSQL before 15 lets every role create objects in the public schema.
        statements.append(f"REVOKE CREATE ON SCHEMA {in_schema} FROM PUBLIC, {grantee}")
    elif public_creates:
        warnings.append(
            f"every role may create objects in the schema {schema} (PostgreSQL before 15): "
            f"as its owner, run REVOKE CREATE ON SCHEMA {in_schema} FROM PUBLIC"
        )
    for statement in statements:
        connection.exec_driver_sql(statement)
    held = connection.execute(
        _HELD,
        {"privileges": list(_FORBIDDEN_ON_AUDIT), "role": role, "table": AUDIT_TABLE.name},
    ).scalars()
    if extra := sorted(held):
        raise RoleError(
            f"the database role {role!r} still holds {', '.join(extra)} on the table "
            f"{AUDIT_TABLE.name} through a role it belongs to or PUBLIC: revoke it there"
        )
    return warnings


def migrate(settings: Settings) -> tuple[list[str], Revisions]:
    """Bring the database to the latest migration as the migration role (that of
    RUJUKAN_MIGRATION_DATABASE_URL, else RUJUKAN_DATABASE_URL's), then grant the service's
    role its privileges; warnings for the operator, and the revisions before and after."""
    owner_url = settings.migration_database_url or settings.database_url
    if settings.migration_database_url and (
        is_sqlite(owner_url) or is_sqlite(settings.database_url)
    ):
        raise RoleError(
            "RUJUKAN_MIGRATION_DATABASE_URL is for PostgreSQL: set it and RUJUKAN_DATABASE_URL "
            "to two roles' URLs of one PostgreSQL database, or leave it unset with SQLite"
        )
    if is_sqlite(owner_url):
        return [], upgrade_to_head(owner_url)
    service = login_of(settings.database_url)
    owner = login_of(owner_url) if settings.migration_database_url else service
    if owner.database != service.database:
        raise RoleError(
            "RUJUKAN_MIGRATION_DATABASE_URL and RUJUKAN_DATABASE_URL name different databases "
            f"({owner.database!r} and {service.database!r})"
        )
    if owner.role == service.role:
        return _migrate_as_one_role(settings)
    warnings: list[str] = []

    def grant() -> None:
        engine = create_engine(owner_url, poolclass=NullPool, hide_parameters=True)
        try:
            with engine.begin() as conn:
                warnings.extend(grant_service_role(conn, service.role))
        finally:
            engine.dispose()

    revisions = upgrade_to_head(owner_url, then=grant)
    return warnings, revisions


def _migrate_as_one_role(settings: Settings) -> tuple[list[str], Revisions]:
    """One role migrates and serves: nothing to grant. In prod that role must not be able to
    rewrite the audit trail, which leaves it able to migrate only a database already at the
    latest migration (a serving container's `rujukan migrate` while a job migrates as the
    owner)."""
    engine = create_engine(settings.database_url, poolclass=NullPool, hide_parameters=True)
    try:
        # Refused before migrating: a migrated schema would turn the running version unready
        # while the new one refuses to start.
        warning = serving_role_warning(settings, engine)
    finally:
        engine.dispose()
    try:
        revisions = upgrade_to_head(settings.database_url)
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise RoleError(
            "the database role of RUJUKAN_DATABASE_URL may not change the schema: run "
            "`rujukan migrate` with RUJUKAN_MIGRATION_DATABASE_URL set to the owner's URL first"
        ) from error
    return ([warning] if warning else []), revisions
