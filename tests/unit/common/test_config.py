"""Settings come from defaults, then the TOML file, then JOBPULSE_* variables; bad ones are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobpulse.agent.settings import AgentSettings
from jobpulse.common import config


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('collector = "head:50051"\ntick = 5\n')
    s = config.load(AgentSettings, path, env={"JOBPULSE_TICK": "2.5"})
    assert s.collector == "head:50051"
    assert s.tick == 2.5


def test_unknown_and_malformed_settings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("tik = 5\n")
    with pytest.raises(config.ConfigError, match="'tik'"):
        config.load(AgentSettings, path, env={})
    with pytest.raises(config.ConfigError, match="JOBPULSE_TICK"):
        config.load(AgentSettings, None, env={"JOBPULSE_TICK": "fast"})
