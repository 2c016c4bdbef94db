"""Clients generated from the committed openapi/openapi.json work against a real server.

The Python client (openapi-python-client) drives a whole lifecycle over loopback HTTP; the
TypeScript types (openapi-typescript) are compiled with tsc against a small program that uses
them. Nothing generated is kept: it all goes to a temporary directory.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from service.context import ServiceContext
from tests.support import Party, assess_body, referral_body, service_body
from tests.support.live import LiveServer, live_server

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "openapi" / "openapi.json"
NODE_BIN = REPO / "tools" / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
PACKAGE = "rujukan_client"


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(  # noqa: S603 - fixed tools, arguments built here
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _node_tool(name: str) -> str:
    tool = NODE_BIN / name
    if not tool.exists():
        pytest.fail(
            f"{tool} is missing: `make .venv/.installed-test` installs the Node tools "
            "from tools/package-lock.json (npm ci)"
        )
    return str(tool)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The Python client generated from the committed spec, imported from a temp dir."""
    out = tmp_path_factory.mktemp("python-client")
    generator = shutil.which("openapi-python-client", path=str(VENV_BIN))
    assert generator, "openapi-python-client is not installed (test extras)"
    output = _run(
        [generator, "generate", "--path", str(SPEC), "--meta", "none",
         "--output-path", str(out / PACKAGE)],
        cwd=out,
    )
    # The generator skips what it cannot model and says so: none of that is acceptable.
    assert "Warning" not in output and "Skipping" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


TYPESCRIPT_PROGRAM = """
import type { components, paths } from "./rujukan";

type Referrals = paths["/v1/referrals"];
type CreateBody = Referrals["post"]["requestBody"]["content"]["application/json"];
type Created = Referrals["post"]["responses"][201]["content"]["application/json"];
type Stale = paths["/v1/referrals/{referral_id}/assess"]["post"]["responses"][412];
type Fhir = paths["/v1/referrals/{referral_id}/fhir"]["get"]["responses"][200];

const body: CreateBody = %(body)s;
const problem: Stale["content"]["application/problem+json"] = {
  type: "https://rujukan.example/problems/precondition-failed",
  title: "Precondition Failed",
  status: 412,
};
const state: Created["status"] = "referred";
// @ts-expect-error: not a lifecycle state, so the types are not `any`
const wrong: Created["status"] = "open";
// @ts-expect-error: the create body requires the person's consent
const incomplete: CreateBody = { to_agency: "KEMENSOS", urgency: "routine" };
const bundle: Fhir["content"]["application/fhir+json"]["resourceType"] = "Bundle";
type Feed = paths["/v1/events"]["get"]["responses"][200]["content"]["application/json"];
type Event = Feed["items"][number];
const assessed: Event["type"] = "referral.assessed";
// @ts-expect-error: event types are a closed list
const unknownEvent: Event["type"] = "referral.deleted";
const problemSchema: components["schemas"]["Problem"] = problem;
export { body, problem, state, wrong, incomplete, bundle, problemSchema, assessed, unknownEvent };
"""


def test_typescript_types_compile(tmp_path: Path) -> None:
    # Without --default-non-nullable false, openapi-typescript makes every field that has a
    # default required, in request bodies too, and a valid create body would not compile.
    _run(
        [_node_tool("openapi-typescript"), str(SPEC), "--default-non-nullable", "false",
         "-o", str(tmp_path / "rujukan.ts")],
        cwd=tmp_path,
    )
    program = TYPESCRIPT_PROGRAM % {"body": json.dumps(referral_body())}
    (tmp_path / "check.ts").write_text(program, encoding="utf-8")
    _run(
        [_node_tool("tsc"), "--noEmit", "--strict", "--target", "es2020",
         "--moduleResolution", "node", str(tmp_path / "check.ts")],
        cwd=tmp_path,
    )


@pytest.fixture
def server(ctx: ServiceContext, clean: None) -> Iterator[LiveServer]:
    with live_server(ctx) as running:
        yield running


def _token(pkg: ModuleType, server: LiveServer, party: Party) -> Any:
    from rujukan_client.api.auth import issue_token
    from rujukan_client.models import BodyIssueToken, TokenResponse

    anonymous = pkg.Client(base_url=server.base_url, raise_on_unexpected_status=True)
    answer = issue_token.sync(
        client=anonymous,
        body=BodyIssueToken(
            grant_type="client_credentials", client_id=party.client_id,
            client_secret=party.secret,
        ),
    )
    assert isinstance(answer, TokenResponse), answer
    assert answer.token_type == "Bearer"
    return pkg.AuthenticatedClient(
        base_url=server.base_url, token=answer.access_token, raise_on_unexpected_status=True
    )


def test_python_client_type_names_are_readable(client_package: ModuleType) -> None:
    """Named enumerations, not names the generator made up from where it found a list
    (`SubjectInSexType0`, `ListReferralsDirectionType0`)."""
    models = importlib.import_module(f"{PACKAGE}.models")
    names = list(models.__all__)
    junk = [n for n in names if re.search(r"Type\d+$|Item\d", n)]
    assert junk == []
    assert {"Sex", "ReferralDirection", "ReferralStatus", "Urgency"} <= set(names)
    from rujukan_client.api.referrals import list_referrals

    signature = inspect.signature(list_referrals.sync)
    assert "ReferralDirection" in str(signature.parameters["direction"].annotation)


def test_python_client_drives_a_whole_lifecycle(
    client_package: ModuleType, server: LiveServer, parties: dict[str, Party]
) -> None:
    from rujukan_client.api.auth import issue_token
    from rujukan_client.api.events import list_events
    from rujukan_client.api.fhir import get_referral_fhir
    from rujukan_client.api.referrals import (
        assess_referral,
        close_referral,
        create_referral,
        get_history,
        get_referral,
        serve_referral,
    )
    from rujukan_client.models import (
        AssessIn,
        BodyIssueToken,
        CloseIn,
        EventPage,
        FhirBundle,
        HistoryEntry,
        Problem,
        ReferralCreate,
        ReferralRead,
        ServiceIn,
    )

    pkg = client_package
    lpsk = _token(pkg, server, parties["LPSK"])
    kemensos = _token(pkg, server, parties["KEMENSOS"])
    kemenham = _token(pkg, server, parties["KEMENHAM"])

    # A wrong secret: the OAuth error arrives as a parsed problem document.
    refused = issue_token.sync(
        client=pkg.Client(base_url=server.base_url),
        body=BodyIssueToken(grant_type="client_credentials",
                            client_id=parties["LPSK"].client_id, client_secret="wrong"),
    )
    assert isinstance(refused, Problem) and refused.status == 401
    assert refused.additional_properties["error"] == "invalid_client"

    body = referral_body()
    created = create_referral.sync_detailed(
        client=lpsk, body=ReferralCreate.from_dict(body), idempotency_key="generated-client-1"
    )
    assert created.status_code == 201
    referral = created.parsed
    assert isinstance(referral, ReferralRead)
    assert referral.status == "referred" and referral.to_agency == "KEMENSOS"
    assert referral.subject.nik == body["subject"]["nik"]
    assert created.headers["ETag"] == '"1"'
    replay = create_referral.sync_detailed(
        client=lpsk, body=ReferralCreate.from_dict(body), idempotency_key="generated-client-1"
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert isinstance(replay.parsed, ReferralRead) and replay.parsed.id == referral.id

    # A third agency: the referral does not exist for it.
    hidden = get_referral.sync(referral.id, client=kemenham)
    assert isinstance(hidden, Problem) and hidden.status == 404

    assessed = assess_referral.sync_detailed(
        referral.id, client=kemensos, body=AssessIn.from_dict(assess_body()),
        if_match=created.headers["ETag"],
    )
    assert isinstance(assessed.parsed, ReferralRead), assessed.content
    assert assessed.parsed.status == "assessed"

    stale = serve_referral.sync(
        referral.id, client=kemensos, body=ServiceIn.from_dict(service_body()),
        if_match=created.headers["ETag"],
    )
    assert isinstance(stale, Problem) and stale.status == 412

    served = serve_referral.sync_detailed(
        referral.id, client=kemensos, body=ServiceIn.from_dict(service_body()),
        if_match=assessed.headers["ETag"],
    )
    assert isinstance(served.parsed, ReferralRead) and served.parsed.status == "served"

    closed = close_referral.sync_detailed(
        referral.id, client=kemensos,
        body=CloseIn.from_dict({"outcome": "completed", "notes": "Reintegrated."}),
        if_match=served.headers["ETag"],
    )
    assert isinstance(closed.parsed, ReferralRead), closed.content
    assert closed.parsed.status == "closed"
    assert closed.parsed.closure and closed.parsed.closure.outcome == "completed"

    history = get_history.sync(referral.id, client=lpsk)
    assert isinstance(history, list) and all(isinstance(h, HistoryEntry) for h in history)
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, "referred"), ("referred", "assessed"), ("assessed", "served"),
        ("served", "closed"),
    ]
    assert [h.actor_agency for h in history] == ["LPSK", "KEMENSOS", "KEMENSOS", "KEMENSOS"]

    bundle = get_referral_fhir.sync(referral.id, client=lpsk)
    assert isinstance(bundle, FhirBundle)
    task = bundle.entry[0].resource
    assert task.resource_type == "Task" and task.id == str(referral.id)
    assert task.additional_properties["status"] == "completed"

    # The event feed of each party tells the same story, in commit order, without the person.
    for party in (lpsk, kemensos):
        events, after = [], None
        while True:
            page = list_events.sync_detailed(client=party, after=after, limit=2)
            assert isinstance(page.parsed, EventPage), page.content
            assert body["subject"]["nik"] not in page.content.decode()
            assert body["subject"]["full_name"] not in page.content.decode()
            events += [e for e in page.parsed.items if e.referral_id == referral.id]
            after = page.parsed.next_cursor
            if not page.parsed.has_more:
                break
        assert [(e.type_.value, e.status) for e in events] == [
            ("referral.created", "referred"), ("referral.assessed", "assessed"),
            ("referral.served", "served"), ("referral.closed", "closed"),
        ]
        assert len({e.id for e in events}) == 4
        assert all(e.reference == referral.reference for e in events)
        rest = list_events.sync(client=party, after=after)
        assert isinstance(rest, EventPage) and rest.items == []
    outsider = list_events.sync(client=kemenham)
    assert isinstance(outsider, EventPage)
    assert [e for e in outsider.items if e.referral_id == referral.id] == []
