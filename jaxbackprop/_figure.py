"""A matplotlib figure that shows itself in Jupyter: no pyplot, no ``%matplotlib inline``.

:mod:`jaxbackprop.draw` makes its loss curves as :class:`NotebookFigure`: a plain
``matplotlib.figure.Figure`` on the Agg canvas (no pyplot, no global backend state)
that also has IPython's ``_repr_png_``, so a fresh kernel shows it inline when a cell
returns it. Imported only where a figure is made (matplotlib is the ``draw`` extra).
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A ``Figure`` on the Agg canvas that IPython displays as PNG."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        """The figure as PNG, for IPython's rich display."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()
