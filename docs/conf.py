"""Sphinx configuration: the jaxbackprop site (myst-nb, as JAX, optax and flax build theirs).

    pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

The notebooks are pages with the outputs stored in their ``.ipynb`` files
(``docs/notebooks`` links to ``notebooks/``; ``python notebooks/build.py`` re-executes
them), so building the site runs no notebook. The API reference is generated from the
docstrings by autodoc and autosummary; napoleon reads their Args/Returns/Raises sections.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, installed or not

import jaxbackprop  # noqa: E402

project = "jaxbackprop"
author = "the jaxbackprop authors"
copyright = "the jaxbackprop authors, MIT licence"  # noqa: A001
release = version = jaxbackprop.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

exclude_patterns = [
    "_build",
    "notebooks/*.py",  # the notebooks' text sources; the pages are their .ipynb files
    "notebooks/.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
]

# MyST (Markdown) and myst-nb (notebooks).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the stored outputs are the pages; nothing runs at build time
nb_render_markdown_format = "myst"

# The API reference.
autosummary_generate = False  # the pages are api/*.rst; autosummary makes the index's table
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False



def literal_blocks(app: object, what: str, name: str, obj: object, options: object,
                   lines: list[str]) -> None:
    """Render a module docstring's indented examples as code.

    The modules' docstrings show usage as an indented block after a paragraph (the
    plain-text convention, readable in ``help()``); reStructuredText would read that
    block as a quotation. Put a ``::`` paragraph before each such block so it is a
    literal block, unless the paragraph before it already ends with ``::``.
    """
    if what != "module":
        return
    out: list[str] = []
    for i, line in enumerate(lines):
        previous = next((p for p in reversed(out) if p.strip()), None)
        starts_block = (i > 0 and not lines[i - 1].strip() and line.startswith("    ")
                        and previous is not None and not previous.startswith(" ")
                        and not previous.rstrip().endswith("::")
                        and not previous.lstrip().startswith((".. ", ">>>")))
        if starts_block:
            out += ["::", ""]
        out.append(line)
    lines[:] = out


def setup(app: object) -> None:
    app.connect("autodoc-process-docstring", literal_blocks, priority=600)  # type: ignore[attr-defined]


html_theme = "furo"
html_title = f"jaxbackprop {release}"
