"""``python -m jaxbackprop`` is the ``jaxbackprop`` command."""

import sys

from jaxbackprop.cli.main import main

sys.exit(main())
