"""``python -m tests.providers.fakes DIR``: the four fakes on free loopback ports (see the package)."""

import sys

from tests.providers.fakes import main

sys.exit(main(sys.argv[1:]))
