"""Per-step figures of a run: every step with its own samples, never the whole-job rows."""

from __future__ import annotations

from pathlib import Path

from jobpulse.collector.domain.runs import RunScope
from jobpulse.collector.store.steps import step_summaries
from storehelp import T0, Agent, open_db


def test_steps_have_their_own_samples_and_the_whole_job_is_not_a_step(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s.db")
    for node in ("n1", "n2"):
        agent = Agent(db, node)
        agent.samples(5, [(T0 + i * 10_000, {"cpu_user_seconds": 2.0 * i}) for i in range(30)])  # whole job
        agent.samples(5, [(T0 + i * 10_000, {"cpu_user_seconds": 1.0 * i}) for i in range(3, 9)], "batch")
        if node == "n2":
            agent.samples(
                5,
                [(T0 + i * 10_000, {"cpu_user_seconds": 0.5 * i, "oom_kills": 1.0}) for i in range(5, 7)],
                "0",
            )
    steps = step_summaries(db, RunScope(5, T0 - 2_000, T0 + 600_000, ("n1", "n2")))
    assert [s["Step"] for s in steps] == ["batch", "0"]
    batch, zero = steps
    assert batch["Nodes"] == ["n1", "n2"] and batch["Samples"] == 12
    assert (batch["FirstSample"], batch["LastSample"]) == (T0 / 1000 + 30, T0 / 1000 + 80)
    assert batch["CpuSeconds"] == 2 * 8.0
    assert zero["Nodes"] == ["n2"] and zero["Samples"] == 2 and zero["OomKills"] == 1.0
    assert step_summaries(db, RunScope(5, T0 - 2_000, T0 + 600_000, ("n1",)))[0]["Samples"] == 6
