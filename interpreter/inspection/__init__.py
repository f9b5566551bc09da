"""Inspecting sessions: what ran in each sandbox, live or over, from any process.

One interface (``Inspector``) with two implementations: ``LocalInspector`` on the store
of this LCI_HOME, and ``RemoteInspector`` on a running service's ``/v1/lci`` routes."""
