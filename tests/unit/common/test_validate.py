"""The shared input checks: what int()/isdigit() used to let through is refused, with the field named."""

from __future__ import annotations

import pytest
from jobpulse.common import validate


@pytest.mark.parametrize(
    "raw", ["²", "٣", "1_2", " 7", "7 ", "0x10", "+5", "", "12a", "4294967296", "0", "-3"]
)
def test_job_number_refuses_what_int_would_bend(raw: str) -> None:
    with pytest.raises(validate.InvalidField) as info:
        validate.job_number(raw, "SLURM_JOB_ID")
    assert info.value.field == "SLURM_JOB_ID"
    assert "SLURM_JOB_ID" in str(info.value)


@pytest.mark.parametrize(("raw", "number"), [("1", 1), ("4294967295", 2**32 - 1), (88, 88)])
def test_job_number_accepts_slurm_ids(raw: str | int, number: int) -> None:
    assert validate.job_number(raw) == number


def test_integer_ranges_and_types() -> None:
    assert validate.integer("-5", "x", -10, 10) == -5
    for bad in (True, 1.0, None, "1e3", 2**70):
        with pytest.raises(validate.InvalidField):
            validate.integer(bad, "x", -(2**63), 2**63 - 1)
    with pytest.raises(validate.InvalidField, match="out of range"):
        validate.unix_id(2**70, "uid")


@pytest.mark.parametrize("name", ["../etc", "a/b", "a\0b", "x" * 300, "", " node1", "node 1", "\u202enode"])
def test_node_names_refused(name: str) -> None:
    with pytest.raises(validate.InvalidField):
        validate.node_name(name)


def test_node_and_user_names_accepted() -> None:
    assert validate.node_name("node-001.cluster_a") == "node-001.cluster_a"
    assert validate.unix_name("alice", "user") == "alice"
    assert validate.unix_name("bob@AD.EXAMPLE", "user") == "bob@AD.EXAMPLE"
    for bad in ("\0", "a\0b", "\u202e", "a b", "-rf"):
        with pytest.raises(validate.InvalidField):
            validate.unix_name(bad, "user")


def test_text_refuses_controls_and_length() -> None:
    assert validate.text("train résumé", "job_name") == "train résumé"
    with pytest.raises(validate.InvalidField):
        validate.text("a\nb", "job_name")
    with pytest.raises(validate.InvalidField):
        validate.text("x" * 2000, "job_name")


def test_json_depth_checked_before_parsing() -> None:
    assert validate.json_depth_ok(b'{"a": [1, {"b": 2}]}', max_depth=3)
    assert not validate.json_depth_ok(b"[" * 1000 + b"]" * 1000, max_depth=32)
    # brackets inside strings (escaped quotes too) are not nesting
    assert validate.json_depth_ok(b'{"a": "[[[[\\"[[[["}', max_depth=1)


def test_safe_for_log_escapes_and_shortens() -> None:
    shown = validate.safe_for_log("hunter2\n\x1b[31m" + "x" * 200)
    assert "\n" not in shown and "\x1b" not in shown and len(shown) <= 64
