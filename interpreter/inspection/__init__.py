"""Inspecting sessions: what ran in each sandbox, live or over, from any process.

One interface (``interface.Inspector``, a Protocol) with two implementations:
``LocalInspector`` on the store and engine of this LCI_HOME (the CLI without ``--url``,
the service's ``/v1/lci`` routes and ``/ui`` pages), and ``RemoteInspector`` on a
running service's ``/v1/lci`` routes (the CLI with ``--url``)."""

from .interface import Inspector, SessionView
from .local import LocalInspector
from .remote import RemoteInspector

__all__ = ["Inspector", "LocalInspector", "RemoteInspector", "SessionView"]
