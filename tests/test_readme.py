"""The README's promise: its two set-up commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    """The two commands of the README's quick start, keyed by what they end with."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```(?:sh|bash)?\n(.*?)```", text, re.S)
    assert block, "README.md has no quick-start block after <!-- quickstart -->"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    return {"lecture": next(ln for ln in lines if ln.endswith("jaxbackprop lecture")),
            "test": next(ln for ln in lines if ln.endswith("python -m pytest"))}


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()["test"] in ci


def test_readme_commands_set_up_a_fresh_virtual_environment() -> None:
    for command in readme_commands().values():
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install ")


def test_the_api_tour_runs() -> None:
    """The README's first Python block (the tour) runs as written."""
    text = (ROOT / "README.md").read_text()
    tour = re.search(r"## A tour of the API\s*```python\n(.*?)```", text, re.S)
    assert tour, "README.md has no API tour block"
    namespace: dict[str, object] = {}
    exec(compile(tour.group(1), "README.md (tour)", "exec"), namespace)  # noqa: S102
    assert {"jb", "tape", "lecture", "xs", "ys"} <= namespace.keys()


def test_ci_lints_and_type_checks_before_the_tests() -> None:
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.startswith("python3 -m venv")]
    assert ci[-1] == readme_commands()["test"]
    assert ci[0].endswith(" && ruff check && pyright")


def test_the_install_hints_match_the_extras() -> None:
    import tomllib

    from jaxbackprop import devices

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for name in ("cuda13", "cuda12", "tpu"):
        assert extras[name] == [f"jax[{name}]"]  # passed through to JAX's own extra
    assert devices.INSTALL_HINTS["gpu"].startswith('pip install "jax[cuda13]"')
    assert 'pip install -e ".[cuda13]"' in (ROOT / "README.md").read_text()
    assert not any(d.startswith("jaxlib") for d in project["dependencies"])
    assert "numpy>=2.0" in project["dependencies"]


def test_pre_commit_runs_the_same_checks_without_downloading() -> None:
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in config and "rev:" not in config  # nothing fetched at run time
    assert "entry: ruff check" in config and "entry: pyright" in config
    assert config.count("language: system") == 2
