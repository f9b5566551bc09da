"""``lci``: the command line. ``main`` parses, calls the core, prints; one module per
command group (``run``: run, files, image, serve, mcp; ``sessions``; ``logs``; ``attach``)."""

from .main import main

__all__ = ["main"]
