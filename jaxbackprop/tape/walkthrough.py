"""Showing the tape's work: one call gives the lecture's three steps as a :class:`Graph`.

    g = tape.walkthrough(jb.loss, 1.0, 1.0, 2.0)    # w, x, y; differentiate w
    print(g.table())                                # forward, local gradients, backward

Every input is recorded, so every edge carries its local gradient (the lecture draws
``dy_hat/dx = w`` too); inputs outside ``argnums`` are marked as fixed data, the
lecture's red edges whose gradients training does not need.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from jaxbackprop.graph import Graph, LocalGradient, Operation, Value, format_number
from jaxbackprop.tape.core import Var, backward, recording
from jaxbackprop.tape.transforms import check_input, normalize_argnums


def _argument_names(f: Callable[..., Any], count: int) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


def walkthrough(f: Callable[..., Any], *args: Any, argnums: int | Sequence[int] = 0,
                names: Sequence[str] | None = None) -> Graph:
    """Record ``f(*args)``, run the backward pass, and return every number on the way.

    ``argnums`` picks the parameters (the rest are data); ``names`` names the inputs
    (default: ``f``'s parameter names). Intermediate values take the names given with
    :func:`jaxbackprop.tape.name` (the model names ``y_hat``, ``s`` and ``L``), else
    ``v<index>``. ``f`` must return a scalar.
    """
    nums = normalize_argnums(argnums, len(args), "walkthrough")
    arg_names = list(names) if names is not None else _argument_names(f, len(args))
    if len(arg_names) != len(args):
        raise ValueError(f"walkthrough: names has {len(arg_names)} entries "
                         f"for {len(args)} arguments")
    with recording() as tape:
        in_vars = [tape.new_var(check_input(a, f"walkthrough: argument {i}"))
                   for i, a in enumerate(args)]
        for var, label in zip(in_vars, arg_names):
            tape.names[var.index] = label
        out = f(*in_vars)
    if type(out) is not Var or out.tape is not tape:
        raise ValueError("walkthrough: the output of f does not depend on its inputs")
    if np.shape(out.value) != ():
        raise TypeError(f"walkthrough: f must return a scalar, got shape {np.shape(out.value)}")
    cts = backward(tape, out.index, 1.0, keep_intermediate=True)

    labels: dict[int, str] = {}
    taken: set[str] = set()
    for index in range(tape.num_vars):
        label = tape.names.get(index, f"v{index}")
        while label in taken:
            label += "'"
        labels[index] = label
        taken.add(label)

    values = [Value(labels[v.index], v.value, "parameter" if i in nums else "data",
                    _zero_if_none(cts[v.index], v.value))
              for i, v in enumerate(in_vars)]
    operations = []
    for eqn in tape.equations:
        if cts[eqn.index] is None:  # not on a path to the output
            continue
        input_names = tuple(labels[p] if p >= 0 else format_number(x)
                            for p, x in zip(eqn.parents, eqn.inputs))
        prim, params = eqn.primitive, eqn.params
        formulas = prim.formulas(labels[eqn.index], *input_names, **params)
        local = []
        for k, parent in enumerate(eqn.parents):
            if parent >= 0:  # an edge from a variable
                partial = (prim.partials[k](eqn.out, *eqn.inputs, **params)
                           if prim.partials else None)
                local.append(LocalGradient(labels[parent], labels[eqn.index], formulas[k], partial))
        operations.append(Operation(labels[eqn.index], prim.name, input_names, tuple(local)))
        values.append(Value(labels[eqn.index], eqn.out, "intermediate", cts[eqn.index]))
    return Graph(tuple(values), tuple(operations), labels[out.index])


def _zero_if_none(ct: Any, like: Any) -> Any:
    return 0.0 * like if ct is None else ct
