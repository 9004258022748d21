"""The ``>>>`` examples in the docstrings run and print what they show.

Every public module of the package is searched (the package walked by ``pkgutil``,
private ``_modules`` and ``__main__`` left out), so a module or an example added later
is run without editing this file. Each module's examples run with ``doctest`` in a namespace of
their own, with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import jaxbackprop

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Modules whose public functions must each carry an example (the others are welcome to).
EVERY_FUNCTION_HAS_AN_EXAMPLE = ("jaxbackprop.model", "jaxbackprop.lecture")


def public_modules() -> list[str]:
    names = ["jaxbackprop"]
    for info in pkgutil.walk_packages(jaxbackprop.__path__, "jaxbackprop."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


def examples(module: ModuleType) -> list[doctest.DocTest]:
    """The module's docstring examples, its own objects only (not what it imports)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


MODULES = public_modules()
WITH_EXAMPLES = [m for m in MODULES if examples(importlib.import_module(m))]


def test_the_walk_finds_the_public_modules() -> None:
    for name in ("jaxbackprop", "jaxbackprop.model", "jaxbackprop.lecture", "jaxbackprop.tape",
                 "jaxbackprop.tape.core", "jaxbackprop.train", "jaxbackprop.parallel",
                 "jaxbackprop.draw", "jaxbackprop.devices"):
        assert name in MODULES
    assert not [m for m in MODULES if "._" in m]


def test_the_lectures_modules_have_examples() -> None:
    expected = {"jaxbackprop", "jaxbackprop.train", *EVERY_FUNCTION_HAS_AN_EXAMPLE}
    assert expected <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    tests = examples(importlib.import_module(name))
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        test.globs = dict(test.globs)  # a namespace per docstring, nothing shared
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert attempted > 0
    assert failed == 0, f"{failed} of {attempted} examples in {name} failed (see the output above)"


@pytest.mark.parametrize("name", EVERY_FUNCTION_HAS_AN_EXAMPLE)
def test_every_public_function_has_an_example(name: str) -> None:
    module = importlib.import_module(name)
    with_examples = {t.name.rsplit(".", 1)[-1] for t in examples(module)}
    functions = [n for n, v in vars(module).items()
                 if not n.startswith("_") and callable(v) and not isinstance(v, type)
                 and getattr(v, "__module__", None) == name]
    assert functions
    missing = sorted(set(functions) - with_examples)
    assert not missing, f"{name}: no >>> example in {missing}"


def test_a_failing_example_fails() -> None:
    """The runner really compares: a wrong expected output is a failure."""
    module = ModuleType("fake")
    module.__doc__ = ">>> 1 + 1\n3\n"
    tests = examples(module)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test, out=lambda _text: None)
    assert runner.summarize(verbose=False).failed == 1
