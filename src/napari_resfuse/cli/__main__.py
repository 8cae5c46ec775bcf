"""``python -m napari_resfuse.cli``: the same as the ``resfuse`` command."""

import sys

from . import main

sys.exit(main())
