"""README.md's configuration table is the one generated from app/settings.py: every setting
documented, with its default, and no row for a setting that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main
from app.settings import Settings, env_name, reference_table

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings:start -->\n", "<!-- settings:end -->"


def readme_table() -> str:
    text = README.read_text()
    return text[text.index(START) + len(START) : text.index(END)]


def test_every_setting_has_a_description() -> None:
    assert [name for name, f in Settings.model_fields.items() if not f.description] == []


def test_the_readme_configuration_table_is_the_one_generated_from_the_settings() -> None:
    documented = re.findall(r"^\| `(OMNISTOCK_\w+)` \|", readme_table(), re.M)
    settings = [env_name(name) for name in Settings.model_fields]
    assert sorted(set(settings) - set(documented)) == [], "settings missing from the README"
    assert sorted(set(documented) - set(settings)) == [], "README rows for no setting"
    assert readme_table() == reference_table(), (
        "README.md's configuration table differs from the settings (defaults or text): "
        "replace it with the output of `omnistock config reference`"
    )


def test_omnistock_config_reference_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference"]) == 0
    out = capsys.readouterr().out
    assert out == reference_table()
    assert "| `OMNISTOCK_DATA_DIR` | `./data` |" in out
    assert "| `OMNISTOCK_REDIS_URL` | unset |" in out
    assert "| `OMNISTOCK_REAPER_ENABLED` | `1` |" in out
