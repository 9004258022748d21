"""jaxbackprop: the backpropagation lecture, reimplemented functionally in JAX.

>>> import jax
>>> import jaxbackprop as jb
>>> print(jb.loss(1.0, 1.0, 2.0))               # (w*x - y)**2
1.0
>>> print(jax.grad(jb.loss)(1.0, 1.0, 2.0))     # from JAX
-2.0
>>> print(jb.tape.grad(jb.loss)(1.0, 1.0, 2.0))  # from the hand-written tape
-2.0
>>> jb.devices.select("cpu").platform
'cpu'

The model, the loss and the trainers are re-exported here. The submodules are attributes
of the package: :mod:`~jaxbackprop.tape`, :mod:`~jaxbackprop.lecture` and
:mod:`~jaxbackprop.devices` are imported with it; :mod:`~jaxbackprop.draw`,
:mod:`~jaxbackprop.parallel`, :mod:`~jaxbackprop.graph`, :mod:`~jaxbackprop.numpy` and
:mod:`~jaxbackprop.jaxpr` on first use (``jb.draw`` imports it then).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from jaxbackprop import devices, lecture, tape
from jaxbackprop.model import loss, loss_and_grad, loss_grad, mean_loss, predict, squared_error
from jaxbackprop.train import DivergenceError, TrainHistory, sweep, train_per_sample, train_scan

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and editors
    from jaxbackprop import draw as draw
    from jaxbackprop import graph as graph
    from jaxbackprop import jaxpr as jaxpr
    from jaxbackprop import numpy as numpy
    from jaxbackprop import parallel as parallel

# Submodules imported on first access: they pull in optional or heavier dependencies
# (matplotlib and graphviz for draw, jax.sharding for parallel) that `import jaxbackprop`
# does not need.
_LAZY_SUBMODULES: frozenset[str] = frozenset({"draw", "parallel", "graph", "numpy", "jaxpr"})


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"jaxbackprop.{name}")
    raise AttributeError(f"module 'jaxbackprop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


__all__ = ["__version__", "tape", "lecture", "devices", "draw", "parallel", "predict",
           "squared_error", "loss", "loss_grad", "loss_and_grad", "mean_loss", "train_per_sample",
           "train_scan", "sweep", "TrainHistory", "DivergenceError"]
