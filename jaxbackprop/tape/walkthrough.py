"""Showing the tape's work: one call gives the lecture's three steps as a :class:`Graph`.

    g = tape.walkthrough(jb.loss, 1.0, 1.0, 2.0)    # w, x, y; differentiate w
    print(g.table())                                # forward, local gradients, backward

Every input is recorded, so every edge carries its local gradient (the lecture draws
``dy_hat/dx = w`` too); inputs outside ``argnums`` are marked as fixed data, the
lecture's red edges whose gradients training does not need. Values take the names of
the local variables that hold them in ``f``'s code (``y_hat = w * x`` names ``y_hat``),
so the model needs to know nothing about tapes.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import jax

from jaxbackprop.graph import Graph, LocalGradient, Operation, Value, format_number
from jaxbackprop.tape.compute import shape
from jaxbackprop.tape.core import Tape, Var, backward_pass, local_gradients
from jaxbackprop.tape.transforms import normalize_argnums, record

_LIBRARIES = sys.stdlib_module_names | {"numpy", "jax", "jaxlib"}
_TAPE = os.path.dirname(os.path.abspath(__file__))  # the tape's own files


def _argument_names(f: Callable[..., Any], count: int) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


def _name_from_locals(tape: Tape) -> Callable[[FrameType, str, Any], None]:
    """A profile hook: when a function of the user's code returns, each value of ``tape``
    held in one of its local variables, and not yet named, takes that variable's name.
    Libraries (the standard library, NumPy, JAX, the tape), comprehensions and generated
    code (the ``__init__`` of a dataclass such as :class:`Equation`) are skipped."""

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        module, code = str(frame.f_globals.get("__name__", "")), frame.f_code
        if (event != "return" or module.split(".")[0] in _LIBRARIES
                or code.co_filename.startswith(_TAPE) or code.co_name.startswith("<")
                or code.co_filename == "<string>"):  # made by exec (a dataclass's __init__)
            return
        for label, value in frame.f_locals.items():
            if type(value) is Var and value.tape is tape and not label.startswith("_"):
                tape.names.setdefault(value.index, label)

    return hook


def walkthrough(f: Callable[..., Any], *args: Any, argnums: int | Sequence[int] = 0,
                names: Sequence[str] | None = None) -> Graph:
    """Record ``f(*args)``, run the backward pass, and return every number on the way.

    Each argument is a number or an array (not a pytree). ``argnums`` picks the
    parameters (the rest are data); ``names`` names the inputs (default: ``f``'s parameter
    names). Intermediate values take the names of the local variables that hold them in
    ``f`` and the functions it calls (or of :func:`jaxbackprop.tape.name`), else
    ``v<index>``. ``f`` must return a scalar.

    Example:
      >>> def f(w, x):
      ...     y_hat = w * x
      ...     return y_hat ** 2
      >>> g = walkthrough(f, 3.0, 2.0)
      >>> [(v.name, v.value, v.adjoint) for v in g.values]
      [('w', 3.0, 24.0), ('x', 2.0, 36.0), ('y_hat', 6.0, 12.0), ('v3', 36.0, 1.0)]
    """
    nums = normalize_argnums(argnums, len(args), "walkthrough")
    for i, arg in enumerate(args):  # one value per argument: its name, its role
        if not jax.tree_util.all_leaves([arg]):
            raise TypeError(f"walkthrough: argument {i} is a {type(arg).__name__}; pass each "
                            "input as its own argument, a number or an array (the walkthrough "
                            "names and marks one value per argument)")
    if names is not None and (isinstance(names, str)
                              or not all(type(n) is str and n for n in names)):
        raise TypeError("walkthrough: names must be non-empty strings, one per "
                        f"argument (a list or tuple), got {names!r}")
    arg_names = list(names) if names is not None else _argument_names(f, len(args))
    if len(arg_names) != len(args):
        raise ValueError(f"walkthrough: names has {len(arg_names)} entries "
                         f"for {len(args)} arguments")

    def f_naming_values(*in_vars: Var) -> Any:  # f, with the hook naming its values
        in_vars[0].tape.names.update(enumerate(arg_names))
        previous = sys.getprofile()
        sys.setprofile(_name_from_locals(in_vars[0].tape))
        try:
            return f(*in_vars)
        finally:
            sys.setprofile(previous)

    tape, leaves, _, (out, *more), outs, _, _ = record(f_naming_values, args, "walkthrough",
                                                          "argument", False)
    if more or out is None:
        raise ValueError("walkthrough: f must return one value that depends on its inputs")
    if shape(outs[0]) != ():
        raise TypeError(f"walkthrough: f must return a scalar, got shape {shape(outs[0])}")
    cts = backward_pass(tape, out, 1.0, keep_intermediate=True)

    labels: list[str] = []
    for index in range(tape.num_vars):
        label = tape.names.get(index, f"v{index}")
        while label in labels:
            label += "'"
        labels.append(label)

    values = [Value(labels[i], x, "parameter" if i in nums else "data",
                    0.0 * x if cts[i] is None else cts[i]) for i, x in enumerate(leaves)]
    operations = []
    for i, eqn in enumerate(tape.equations):
        index = tape.num_inputs + i
        if cts[index] is None:  # not on a path to the output
            continue
        input_names = tuple(labels[p] if p is not None else format_number(x)
                            for p, x in zip(eqn.parents, eqn.inputs, strict=True))
        formulas = eqn.primitive.formulas(labels[index], *input_names, **eqn.params)
        partials = local_gradients(eqn) if eqn.primitive.partials else [None] * len(eqn.parents)
        local = tuple(LocalGradient(labels[p], labels[index], formula, partial)
                      for p, formula, partial in zip(eqn.parents, formulas, partials, strict=True)
                      if p is not None)
        # integer parameters shown as JAX shows them: x**2 is integer_pow[n=2]
        shown = ", ".join(f"{k}={v}" for k, v in eqn.params.items() if type(v) is int)
        label = f"{eqn.primitive.name}[{shown}]" if shown else eqn.primitive.name
        operations.append(Operation(labels[index], label, input_names, local))
        values.append(Value(labels[index], eqn.out, "intermediate", cts[index]))
    return Graph(tuple(values), tuple(operations), labels[out])
