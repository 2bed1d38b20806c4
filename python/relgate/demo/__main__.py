"""``python -m relgate.demo``: run the whole story (see ``relgate.demo.story``)."""

from __future__ import annotations

import sys

from relgate.demo.story import main

sys.exit(main())
