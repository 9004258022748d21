"""A small hand-written reverse-mode (VJP) tape beside ``jax.grad``.

    from jaxbackprop import tape
    import jaxbackprop.numpy as jbnp

    tape.grad(jb.loss)(1.0, 1.0, 2.0)               # -2.0, as jax.grad(jb.loss) gives
    tape.grad(f, argnums=(0, 1))(w, x)              # jax.grad's signature
    out, f_vjp = tape.vjp(f, w, x)                  # jax.vjp's: f_vjp(out_bar) -> (w_bar, x_bar)
    tape.grad(tape.grad(f))(x)                      # higher order, through the tape itself
    jax.jit(tape.grad(f)), jax.vmap(tape.grad(f))   # JAX transforms the tape like any function
    tape.walkthrough(jb.loss, 1.0, 1.0, 2.0)        # the three steps, as data (a Graph)

Write ``f`` with operators and :mod:`jaxbackprop.numpy` (``jbnp.exp``, ``jbnp.sum``...):
those record on tape values and call ``math``, NumPy or ``jax.numpy`` otherwise, so the
same ``f`` goes to ``jax.grad`` and to ``tape.grad``.

Read it in this order: :mod:`~jaxbackprop.tape.core` (the tape and its backward loop),
:mod:`~jaxbackprop.tape.primitives` (each operation beside its local derivative),
:mod:`~jaxbackprop.tape.transforms` (``vjp``/``grad``), and
:mod:`~jaxbackprop.tape.walkthrough` (showing its work).
"""

from jaxbackprop.tape import primitives  # noqa: F401  (attaches Var's operators)
from jaxbackprop.tape.core import Equation, Primitive, ShapeError, Tape, Var, name
from jaxbackprop.tape.primitives import PRIMITIVES
from jaxbackprop.tape.transforms import grad, value_and_grad, vjp
from jaxbackprop.tape.walkthrough import walkthrough

__all__ = ["vjp", "grad", "value_and_grad", "walkthrough", "name", "Var", "Tape", "Equation",
           "Primitive", "PRIMITIVES", "ShapeError"]
