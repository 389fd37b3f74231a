"""config/coachd.toml documents every setting with its default."""

from __future__ import annotations

import sys
from pathlib import Path

from coachd.commands.config import render_documented
from coachd.settings import Settings, load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_example_config_is_up_to_date(repo_root: Path) -> None:
    shipped = (repo_root / "config" / "coachd.toml").read_text()
    assert shipped == render_documented(), (
        "config/coachd.toml is stale: regenerate with "
        "`coachd config show --documented > config/coachd.toml`"
    )


def test_uncommenting_every_default_loads_the_defaults(repo_root: Path, tmp_path: Path) -> None:
    lines = []
    for line in (repo_root / "config" / "coachd.toml").read_text().splitlines():
        if line.startswith("# ") and " = " in line and ":" not in line.split(" = ")[0]:
            lines.append(line[2:])
        elif line.startswith("["):
            lines.append(line)
    path = tmp_path / "all.toml"
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())
    loaded = load_settings(path, environ={})
    assert loaded.settings == Settings()
