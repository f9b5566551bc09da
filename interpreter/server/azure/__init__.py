"""The Azure Container Apps dynamic-sessions face, both dialects, at ``/`` and under
``/subscriptions/{s}/resourceGroups/{rg}/sessionPools/{pool}/``."""
