"""The README documents every configuration key and the quick start really is two make targets."""

from __future__ import annotations

import re
from pathlib import Path

from streaming.config import LEGACY_ENV_NAMES, all_keys

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \|", README, re.M))
    expected = {f"{section}.{key}" for section, key in all_keys()}
    assert expected - documented == set(), "undocumented settings"
    assert documented - expected == set(), "README documents settings that do not exist"
    for name in LEGACY_ENV_NAMES.values():
        assert f"`{name}`" in README, name


def test_quick_start_commands_exist_in_the_makefile():
    quick_start = README.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
