"""The job service without HTTP: ownership and tags answer domain errors, never HTTP exceptions."""

from __future__ import annotations

import pytest
from jobpulse.collector.domain.errors import InvalidInput, NotFound
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.jobs import JobQuery
from jobpulse.collector.domain.principals import Principal, Role
from jobpulse.collector.services.jobs import JobService
from jobpulse.collector.store.sqlite import SqliteStore
from seed import add_job
from storehelp import db_of

T0 = 1_700_000_000
ALICE = Principal("alice", frozenset({Role.USER.value}), "session", session_id="s1")
BOB = Principal("bob", frozenset({Role.USER.value}), "session", session_id="s2")
ADMIN = Principal("admin", frozenset({Role.ADMIN.value}), "session", session_id="s3")


@pytest.fixture
def service(fx_store: SqliteStore) -> JobService:
    add_job(db_of(fx_store), 301, "alice", start=T0, stop=T0 + 600)
    add_job(db_of(fx_store), 302, "bob", start=T0, stop=T0 + 600)
    return JobService(fx_store, tick=10.0)


async def test_a_user_never_sees_another_users_run(service: JobService) -> None:
    row, scope = await service.get_run(ALICE, JobId(301))
    assert row.user_name == "alice" and scope.job_id == 301
    with pytest.raises(NotFound, match="302") as bobs:
        await service.get_run(ALICE, JobId(302))
    with pytest.raises(NotFound) as missing:
        await service.get_run(ALICE, JobId(999))
    assert type(bobs.value) is type(missing.value)  # the same answer as a missing job: ids cannot be probed
    assert (await service.get_run(ADMIN, JobId(302)))[0].user_name == "bob"
    with pytest.raises(NotFound):
        await service.job_page(BOB, 301)


async def test_the_list_is_scoped_to_the_users_own_jobs(service: JobService) -> None:
    listing = (await service.list_jobs(ALICE, JobQuery())).listing
    assert [r.job_id for r in listing.rows] == [301] and listing.total == 1
    listing = (await service.list_jobs(ALICE, JobQuery(user="bob"))).listing
    assert listing.rows == [] and listing.total == 0
    listing = (await service.list_jobs(ADMIN, JobQuery(user="bob"))).listing
    assert [r.job_id for r in listing.rows] == [302]


async def test_tags_and_search_answer_domain_errors(service: JobService) -> None:
    tag = await service.add_tag(ALICE, 301, "keep", "user")
    assert (tag.name, tag.type, tag.created_by) == ("keep", "user", "alice")
    with pytest.raises(NotFound):
        await service.add_tag(BOB, 301, "x", "user")
    with pytest.raises(InvalidInput) as empty:
        await service.add_tag(ALICE, 301, " ", "user")
    assert empty.value.field == "Name"
    await service.remove_tag(ALICE, 301, "keep")
    with pytest.raises(NotFound):
        await service.remove_tag(ALICE, 301, "keep")
    assert await service.search(ALICE, "301") == "job:301"
    with pytest.raises(NotFound):
        await service.search(ALICE, "302")
    assert await service.search(ADMIN, "bob") == "user:bob"
    with pytest.raises(InvalidInput) as unknown:
        await service.metric(ALICE, 301, "no-such-metric")
    assert unknown.value.field == "metric"


async def test_the_lists_radar_figures_are_one_store_read_per_page(
    fx_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No read per job: the page's summaries in one call, and a summary already read is not read again
    (stored summaries are never rewritten); runs without a summary are asked again."""
    from jobpulse.collector.findings import Thresholds
    from seed import add_samples
    from storehelp import summarize

    for job in range(400, 430):
        run = add_job(db_of(fx_store), job, "alice", start=T0, stop=T0 + 600)
        add_samples(db_of(fx_store), job, ("n1",), start=T0, count=10)
        if job < 420:
            summarize(db_of(fx_store), run, now=T0 + 700, thresholds=Thresholds())
    service = JobService(fx_store, tick=10.0)
    calls: list[list[int]] = []
    read = fx_store.metric_summaries

    async def counted(run_ids: list[int], measurements: list[str]) -> object:
        calls.append(list(run_ids))
        return await read(run_ids, measurements)

    monkeypatch.setattr(fx_store, "metric_summaries", counted)
    page = await service.list_jobs(ALICE, JobQuery(limit=100))
    assert len(calls) == 1 and len(calls[0]) == 30
    by_job = {r.job_id: r.run_id for r in page.listing.rows}
    cores = {f.config.GUID: f for f in page.figures[by_job[400]]}["cpu_cores"]
    assert (cores.mean, cores.max) == (pytest.approx(2.9), 7.0)  # seed: i % 8 for i in 0..9
    assert cores.config.MaxPerNode == 8.0  # the node's CPUs: the radar's scale
    assert by_job[425] not in page.figures  # no summary yet
    await service.list_jobs(ALICE, JobQuery(limit=100))
    assert len(calls) == 2 and sorted(calls[1]) == sorted(by_job[j] for j in range(420, 430))
