"""Schemathesis hooks of bench/schemathesis_run.py: two checks that replace built-in
ones with what they cannot know about lci.

``positive_data_acceptance_in_state`` knows which 400s answer the state of an object
rather than the request.

A schema says which requests are well formed, not what state the objects they name
are in. lci answers some requests its schema admits with a 400 because of that state,
as OpenAI does on the same routes (the openai SDK raises ``BadRequestError`` for them,
and clients catch that): a container whose session has ended (``container_expired``),
a run that has ended and so cannot be cancelled or take tool outputs, a thread locked
by an active run, a ``tool_choice`` naming a tool the run lacks, two function tools of
one name, an upload where a directory (or a file) of that name already is. The
stateful phase produces these on purpose. Each is recognised here by its error code or
the fixed start of its message; every other 400 to a schema-valid request still fails
the run.

``ensure_resource_availability_of_the_path`` knows a 404 about an object the *body*
named (``file_id``, ``file_ids``, attachments, a run's ``assistant_id``): the stateful
phase creates a container or a thread, then sends a request to it that names an id it
made up, and the built-in check takes that 404 for the container or the thread having
gone.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.openapi.checks import EnsureResourceAvailability, RejectedPositiveData
from schemathesis.specs.openapi.checks import ensure_resource_availability, positive_data_acceptance

CODES = {"container_expired", "ContainerExpired"}
MESSAGES = (
    "Cannot cancel run with status",  # assistants.cancel_run
    "Runs in status",  # assistants.submit_tool_outputs: "... do not accept tool outputs"
    "Expected tool outputs for call_ids",
    "Can't add messages to",  # ThreadLocked
    "Can't create a run on",
    "tool_choice names a function the",  # conversation.check_tool_choice, responses.request
    "Invalid tool_choice",  # {'type': 'code_interpreter'} without that tool
    "Duplicate tool name",  # conversation.check_tools
)
NAMES_IN_THE_WAY = ("a directory of that name exists", "is a file or a link, not a directory")


def refused_for_state(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", ""))
    return (
        error.get("code") in CODES
        or message.startswith(MESSAGES)
        or any(part in message for part in NAMES_IN_THE_WAY)
    )


@schemathesis.check
def positive_data_acceptance_in_state(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 400 and refused_for_state(_json(response)):
            return None
        raise


@schemathesis.check
def ensure_resource_availability_of_the_path(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return ensure_resource_availability(ctx, response, case)
    except EnsureResourceAvailability:
        if _names_a_file_of_the_body(_json(response), case):
            return None
        raise


def _names_a_file_of_the_body(body: Any, case: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", ""))
    path = case.path_parameters or {}
    if message.startswith("No file ") and not any("file" in name for name in path):
        return True
    # a 404 whose ``param`` is a body field (``assistant_id`` of a run) is about that field
    param = error.get("param")
    return isinstance(param, str) and param not in path and param in _body_fields(case)


def _body_fields(case: Any) -> set[str]:
    body = getattr(case, "body", None)
    return set(body) if isinstance(body, dict) else set()


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
