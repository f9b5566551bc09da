"""The Assistants API core: assistants, threads, messages, runs and their steps, with lci
as each thread's code interpreter, over any chat-completions model. No HTTP here: the
service's routes (``server/openai``) and library users share it."""

from .api import Assistants

__all__ = ["Assistants"]
