"""The docs site builds with warnings as errors, and the README's notebook section runs.

The site needs the ``docs`` extra (Sphinx, myst-nb, furo); without Sphinx the build test
is skipped.
"""

from __future__ import annotations

import ast
import html
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# The modules whose public functions the API reference must cover.
DOCUMENTED = ("model", "lecture", "tape", "train", "parallel", "draw", "devices")


def readme_block(section: str, language: str) -> str:
    """The first ``language`` code block of the README's ``## <section>``."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"README.md has no section '## {section}'"
    block = re.search(rf"```{language}\n(.*?)```", found.group(1), re.S)
    assert block, f"README.md's '## {section}' has no {language} block"
    return block.group(1)


def test_readme_notebook_section_runs() -> None:
    """The README's notebook way, as written: a graph that draws itself, a training, a plot."""
    pytest.importorskip("matplotlib")
    namespace: dict[str, object] = {}
    code = ast.parse(readme_block("Notebooks", "python"))
    *body, last = code.body
    assert isinstance(last, ast.Expr), "the block ends with the figure, shown by the notebook"
    exec(compile(ast.Module(body, []), "README.md (Notebooks)", "exec"), namespace)  # noqa: S102
    figure = eval(compile(ast.Expression(last.value), "README.md (Notebooks)", "eval"), namespace)
    assert figure._repr_png_().startswith(b"\x89PNG")  # shown inline, no %matplotlib needed
    graph = namespace["graph"]
    svg = graph._repr_svg_()  # type: ignore[attr-defined]
    assert "<svg" in svg and "dL/dw = -2" in html.unescape(svg)
    history = namespace["history"]
    assert f"{history.epoch_loss[0]:.4f}" == "7.3159"  # type: ignore[attr-defined]


def test_readme_builds_the_site_with_one_command() -> None:
    command = readme_block("Notebooks", "sh").strip()
    assert command == 'pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html'


def test_the_api_reference_lists_the_public_modules() -> None:
    listed = (DOCS / "api" / "index.rst").read_text()
    for module in DOCUMENTED:
        assert re.search(rf"^\s+jaxbackprop\.{module}$", listed, re.M), module


def test_every_public_module_has_an_api_page() -> None:
    """Each public module of the library (not the command line, not the benchmark) has its
    page ``docs/api/<name>.rst``, listed in the index; no page is left for a module gone."""
    import pkgutil

    import jaxbackprop

    modules = {info.name.removeprefix("jaxbackprop.")
               for info in pkgutil.walk_packages(jaxbackprop.__path__, "jaxbackprop.")
               if not any(part.startswith("_") for part in info.name.split("."))
               and not info.name.startswith(("jaxbackprop.cli", "jaxbackprop.benchmark"))}
    pages = {p.stem for p in (DOCS / "api").glob("*.rst")} - {"index"}
    assert pages == modules
    # toctree entries: the index lists the modules, the tape's page its own modules
    entries = {line.strip() for page in ("index", "tape")
               for line in (DOCS / "api" / f"{page}.rst").read_text().splitlines()
               if line.startswith("   ") and not line.strip().startswith((":", "jaxbackprop"))}
    assert modules <= entries, sorted(modules - entries)


def test_every_notebook_is_a_page() -> None:
    index = (DOCS / "index.md").read_text()
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"notebooks/{notebook.stem}" in index
    assert (DOCS / "notebooks").resolve() == (ROOT / "notebooks").resolve()


def test_sphinx_builds_the_site_with_warnings_as_errors(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    pytest.importorskip("furo")
    out = tmp_path / "html"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for name in ("index.html", "getting_started.html", "api/index.html",
                 "notebooks/01_the_first_note.html", "notebooks/04_beyond_the_lecture.html"):
        assert name in pages, sorted(pages)
    # The API pages cover every public function of the documented modules.
    import jaxbackprop.devices
    import jaxbackprop.draw
    import jaxbackprop.lecture
    import jaxbackprop.model
    import jaxbackprop.parallel
    import jaxbackprop.tape
    import jaxbackprop.train  # noqa: F401

    api = "".join(p.read_text() for p in (out / "api").rglob("*.html"))
    for module_name in DOCUMENTED:
        module = sys.modules[f"jaxbackprop.{module_name}"]
        public = getattr(module, "__all__", None) or [
            n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
            and getattr(v, "__module__", None) == module.__name__]
        for name in public:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # constants, type aliases, submodules
            # documented where it is defined, or where a public module exports it
            ids = {f'id="{obj.__module__}.{obj.__qualname__}"', f'id="{module.__name__}.{name}"'}
            assert any(i in api for i in ids), f"{module.__name__}.{name} is not in the API pages"
    # The notebooks' stored pictures are on their pages.
    first = (out / "notebooks" / "01_the_first_note.html").read_text()
    assert first.count(".svg") >= 5
