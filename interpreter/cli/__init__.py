"""``lci``: the command line. ``main`` parses, calls the core, prints; one module per
command group (``main``: run, files, image, serve, mcp; ``sessions``, with what every
session command shares; ``logs``: logs, export; ``attach``), ``display`` their text."""

from .main import main

__all__ = ["main"]
