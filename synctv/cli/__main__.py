"""``python -m synctv.cli`` is the ``synctv`` command."""

from __future__ import annotations

from synctv.cli.main import main

raise SystemExit(main())
