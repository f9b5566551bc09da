"""The web inspector at ``/ui``: server-rendered pages over the inspection core, behind
its own cookie login."""
