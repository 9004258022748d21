"""jaxbackprop: the backpropagation lecture, reimplemented functionally in JAX.

    import jaxbackprop as jb
    jb.loss(1.0, 1.0, 2.0)                      # (w*x - y)**2 = 1
    jax.grad(jb.loss)(1.0, 1.0, 2.0)            # -2, from JAX
    jb.tape.grad(jb.loss)(1.0, 1.0, 2.0)        # -2, from the hand-written tape
"""

__version__ = "0.1.0"

from jaxbackprop import tape
from jaxbackprop.model import loss, loss_and_grad, loss_grad, mean_loss, predict, squared_error
from jaxbackprop.train import DivergenceError, TrainHistory, sweep, train_per_sample, train_scan

__all__ = ["__version__", "tape", "predict", "squared_error", "loss", "loss_grad",
           "loss_and_grad", "mean_loss", "train_per_sample", "train_scan", "sweep", "TrainHistory",
           "DivergenceError"]
