"""JobMon's request bodies are read as its Go backend reads them (api/jobmon/body.py): keys in any case
(the exact name first), unknown keys ignored unless the struct forbids them, null leaves a field alone,
any Content-Type; types checked strictly, and a refusal is a 400 naming the field."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
from jobpulse.collector.api.jobmon.body import decode_body
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.exceptions import ValidationException
from litestar.testing import AsyncTestClient
from storehelp import db_of


class Node(msgspec.Struct):
    Name: str
    Id: int = 0


class Job(msgspec.Struct):
    Id: Annotated[int, msgspec.Meta(ge=1)]
    UserName: str = ""
    GPUsPerNode: int = 0
    IsRunning: bool = True
    Nodes: list[Node] = msgspec.field(default_factory=list)
    Extra: dict[str, Node] | None = None


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    role: str | None = None


class Shadowed(msgspec.Struct):
    ID: int = 0
    Id: int = 0


def refusal(body: bytes, annotation: Any) -> str:
    with pytest.raises(ValidationException) as caught:
        decode_body(body, annotation)
    return str(caught.value.detail)


def test_keys_match_in_any_case_and_unknown_keys_are_ignored() -> None:
    job = decode_body(
        b'{"id": 7, "userName": "alice", "gpusPerNode": 4, "ISRUNNING": false, "projectId": "x",'
        b' "nodes": [{"name": "n1", "whatever": 1}], "extra": {"k": {"NAME": "n2"}}}',
        Job,
    )
    assert job == Job(
        Id=7, UserName="alice", GPUsPerNode=4, IsRunning=False, Nodes=[Node("n1")], Extra={"k": Node("n2")}
    )


def test_exact_name_first_then_the_first_field_that_folds_the_same() -> None:
    assert decode_body(b'{"Id": 1, "ID": 2}', Shadowed) == Shadowed(ID=2, Id=1)
    assert decode_body(b'{"id": 5}', Shadowed) == Shadowed(ID=5)  # Go: the first field of that name
    assert decode_body(b'{"Id": 1, "id": 2}', Job).Id == 2  # two keys for one field: the last wins


def test_null_leaves_a_field_alone() -> None:
    assert decode_body(b'{"Id": 3, "UserName": null, "Extra": null}', Job) == Job(Id=3)
    assert decode_body(b'{"Id": 3, "userName": "bob", "UserName": null}', Job).UserName == "bob"
    assert "Id" in refusal(b'{"Id": null}', Job)  # a required field left null is missing


def test_types_are_checked_strictly_and_refusals_name_the_field() -> None:
    assert refusal(b'{"Id": "7"}', Job).startswith("Id: Expected int, got str")
    assert refusal(b'{"Id": 0}', Job).startswith("Id: Expected int >= 1")
    assert refusal(b'{"Id": 1, "isRunning": 1}', Job).startswith("IsRunning: Expected bool")
    assert refusal(b'{"userName": "x"}', Job) == "Id: Object missing required field Id"
    assert refusal(b'{"Id": 1, "Nodes": [{"Id": 1}]}', Job).startswith("Nodes[0].Name: Object missing")
    assert refusal(b'{"Id": 1, "nodes": [{"name": 5}]}', Job).startswith("Nodes[0].Name: Expected str")
    assert refusal(b"[1]", Job).startswith("body: Expected object")
    assert refusal(b'{"Id": 1', Job).startswith("body: not JSON")


def test_a_struct_that_forbids_unknown_keys_still_does() -> None:
    assert decode_body(b'{"Role": "user"}', Strict | None) == Strict(role="user")
    assert refusal(b'{"rolez": "user"}', Strict | None) == "rolez: Object contains unknown field rolez"
    assert decode_body(b"null", Strict | None) is None


@pytest.fixture
def fx_key(fx_store: SqliteStore) -> dict[str, str]:
    key, _ = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "prolog")
    return {"X-API-Key": key}


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain;charset=UTF-8", "application/json", None],
)
async def test_a_json_body_is_read_whatever_the_content_type(
    fx_client: AsyncTestClient, fx_key: dict[str, str], content_type: str | None
) -> None:
    headers = {**fx_key, **({"Content-Type": content_type} if content_type else {})}
    body = b'{"id": 77, "userName": "alice", "startTime": 1796327997, "projectId": "noProject"}'
    response = await fx_client.put("/api/job_start", content=body, headers=headers)
    assert response.status_code == 200, response.text
    stop = await fx_client.patch("/api/job_stop/77", content=b'{"exitCode": 0}', headers=headers)
    assert stop.status_code == 200, stop.text


async def test_json_sent_as_a_form_is_still_checked_before_parsing(
    fx_client: AsyncTestClient, fx_key: dict[str, str]
) -> None:
    form = {**fx_key, "Content-Type": "application/x-www-form-urlencoded"}
    deep = await fx_client.put("/api/job_start", content=b"[" * 5000, headers=form)
    assert deep.status_code == 400 and deep.json()["detail"].startswith("body: JSON nested deeper")
    not_utf8 = await fx_client.put("/api/job_start", content=b'{"Id": 1, "JobName": "\xff"}', headers=form)
    assert not_utf8.status_code == 400 and not_utf8.json()["detail"].startswith("body: not valid UTF-8")
    wrong = await fx_client.put("/api/job_start", content=b'{"id": "1"}', headers=form)
    assert wrong.status_code == 400 and wrong.json()["detail"].startswith("Id: Expected int, got str")
    assert wrong.json()["errors"][0]["key"] == "Id"


async def test_the_openapi_document_still_describes_the_bodies(fx_client: AsyncTestClient) -> None:
    schema = (await fx_client.get("/api/openapi.json")).json()
    body = schema["paths"]["/api/job_start"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    ref = body["$ref"].rsplit("/", 1)[-1]
    assert {"Id", "UserName", "NodeList", "JobScript"} <= set(
        schema["components"]["schemas"][ref]["properties"]
    )
