"""The import contract: packages import downwards only, and no package's modules import in a cycle.

The contracts are in ``pyproject.toml`` (``[tool.importlinter]``); import-linter builds the graph
from every import statement, those inside functions and under ``TYPE_CHECKING`` included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_imports_follow_the_layers_without_cycles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "2 kept, 0 broken" in report, report


def test_the_contract_catches_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same contract over a copy of the layers in which ``config`` imports ``app``: broken."""
    for package in ("config", "app"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "config" / "settings.py").write_text(
        "def load() -> None:\n    from app import cli  # a function-level import\n"
    )
    (tmp_path / "app" / "cli.py").write_text("")
    (tmp_path / "contract.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["config", "app"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "layers"\ntype = "layers"\nlayers = ["app", "config"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("config", "app"):  # the copies, not the project's packages
        monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    status = lint_imports(config_filename=str(tmp_path / "contract.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert status == 1, report
    assert "config.settings -> app.cli" in report, report
