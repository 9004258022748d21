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

The model, the loss and the trainers are re-exported here, and the submodules are
attributes of the package: ``jb.tape``, ``jb.lecture``, ``jb.devices``, ``jb.draw``,
``jb.parallel`` (also ``jb.graph``, ``jb.numpy``, ``jb.jaxpr``, ``jb.mlp``,
``jb.affine_sgd``). Every name is imported on first use (PEP 562), so ``import
jaxbackprop`` and the ``jaxbackprop --help`` command do not pay for importing JAX, and
``jb.draw`` imports matplotlib only when it draws.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from jaxbackprop import affine_sgd as affine_sgd
    from jaxbackprop import devices as devices
    from jaxbackprop import draw as draw
    from jaxbackprop import graph as graph
    from jaxbackprop import jaxpr as jaxpr
    from jaxbackprop import lecture as lecture
    from jaxbackprop import mlp as mlp
    from jaxbackprop import numpy as numpy
    from jaxbackprop import parallel as parallel
    from jaxbackprop import tape as tape
    from jaxbackprop.model import loss, loss_and_grad, loss_grad, mean_loss, predict, squared_error
    from jaxbackprop.train import DivergenceError, TrainHistory, sweep, train_per_sample, train_scan

# The submodules reachable as attributes, and each re-exported name with its module.
_SUBMODULES: tuple[str, ...] = ("tape", "lecture", "devices", "draw", "parallel", "graph",
                                "numpy", "jaxpr", "mlp", "affine_sgd")
_NAMES: dict[str, str] = {
    **dict.fromkeys(["predict", "squared_error", "loss", "loss_grad", "loss_and_grad",
                     "mean_loss"], "jaxbackprop.model"),
    **dict.fromkeys(["train_per_sample", "train_scan", "sweep", "TrainHistory",
                     "DivergenceError"], "jaxbackprop.train"),
}

__all__ = ["__version__", "tape", "lecture", "devices", "draw", "parallel", "predict",
           "squared_error", "loss", "loss_grad", "loss_and_grad", "mean_loss", "train_per_sample",
           "train_scan", "sweep", "TrainHistory", "DivergenceError"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"jaxbackprop.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'jaxbackprop' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES) | set(_NAMES))
