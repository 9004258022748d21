"""A small hand-written tape beside ``jax.grad``: reverse mode and forward mode.

    from jaxbackprop import tape
    import jaxbackprop.numpy as jbnp

    tape.grad(jb.loss)(1.0, 1.0, 2.0)               # -2.0, as jax.grad(jb.loss) gives
    tape.grad(f, argnums=(0, 1), has_aux=False)     # jax.grad's signature
    out, f_vjp = tape.vjp(f, w, x)                  # jax.vjp's: f_vjp(out_bar) -> (w_bar, x_bar)
    out, out_dot = tape.jvp(f, (w, x), (w_dot, x_dot))   # jax.jvp's
    tape.grad(tape.grad(f))(x)                      # higher order, through the tape itself
    jax.jit(tape.grad(f)), jax.vmap(tape.grad(f))   # JAX transforms the tape like any function
    tape.walkthrough(jb.loss, 1.0, 1.0, 2.0)        # the three steps, as data (a Graph)

Write ``f`` with operators, indexing and :mod:`jaxbackprop.numpy` (``jbnp.exp``,
``jbnp.sum``...): those record on tape values and call ``math``, NumPy or ``jax.numpy``
otherwise, so the same ``f`` goes to ``jax.grad`` and to ``tape.grad``.

Read it in this order: :mod:`~jaxbackprop.tape.core` (the tape, the three steps, and the
derivative table), :mod:`~jaxbackprop.tape.transforms` (``vjp``/``grad``/``jvp``), and
:mod:`~jaxbackprop.tape.walkthrough` (showing its work).
"""

from jaxbackprop.tape.core import PRIMITIVES, Equation, Primitive, ShapeError, Tape, Var, name
from jaxbackprop.tape.transforms import grad, jvp, value_and_grad, vjp
from jaxbackprop.tape.walkthrough import walkthrough

__all__ = ["vjp", "grad", "value_and_grad", "jvp", "walkthrough", "name", "Var", "Tape",
           "Equation", "Primitive", "PRIMITIVES", "ShapeError"]
