"""Build hook only (the metadata is in setup.cfg): ``build`` also runs ``build_web`` (build_web.py),
which puts the pages and the locked browser players in the wheel without npm."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build import build

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the build backend does not add it

from build_web import BuildWeb


class Build(build):
    sub_commands = [*build.sub_commands, ("build_web", None)]


setup(cmdclass={"build": Build, "build_web": BuildWeb})
