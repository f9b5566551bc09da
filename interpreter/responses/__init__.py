"""The Responses API core: ``POST /v1/responses`` with the hosted ``code_interpreter`` tool
over any chat-completions model (objects, request checks, store, the loop)."""

from .api import Responses
from .loop import LIVE_OUTPUT

__all__ = ["LIVE_OUTPUT", "Responses"]
