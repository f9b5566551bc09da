"""The OpenAI face under ``/v1``: files, containers (and their files and executions), and
the Assistants API (assistants, threads, messages, runs and steps), and the Responses API."""
