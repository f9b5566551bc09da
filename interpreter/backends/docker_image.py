"""The Docker engine's side of building the sandbox image (``image.py`` decides what
to build): look an image up, pull one, ``docker import`` a root filesystem, run a
``docker build`` with no network. docker-py's errors become ours here and only here.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..errors import EngineUnavailable, ImageBuildFailed

__all__ = ["DockerImages", "Progress"]

Progress = Callable[[str], None]


@contextmanager
def _engine(step: str) -> Iterator[None]:
    """docker-py's errors become ours, here and only here."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise ImageBuildFailed(step, f"Docker engine error: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(str(exc)) from exc


class DockerImages:
    """Images on one Docker engine (``client``: a docker-py client; default: from the
    environment, connected and pinged now)."""

    def __init__(self, client: Any = None) -> None:
        if client is None:
            with _engine("connect"):
                client = docker.from_env(timeout=600)
                client.ping()
        self.client = client

    def present(self, tag: str) -> bool:
        with _engine(f"look up {tag}"):
            try:
                self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                return False
        return True

    def pull(self, ref: str) -> None:
        try:
            with _engine(f"docker pull {ref}"):
                self.client.images.pull(ref)
        except ImageBuildFailed as exc:
            raise ImageBuildFailed(
                f"docker pull {ref}",
                f"{exc.detail}. Without a registry use the debootstrap method "
                "(as root, with debootstrap installed)",
            ) from exc

    def import_rootfs(self, rootfs: Path, tag: str, changes: list[str]) -> None:
        """tar | docker import, streamed: neither the tar nor the image is held in memory.

        The image is tagged only once tar has succeeded, so a cut stream never becomes
        a base."""
        cmd = ["tar", "--numeric-owner", "--one-file-system", "--xattrs", "-C", str(rootfs),
               "-c", "."]  # fmt: skip
        api = self.client.api
        with tempfile.TemporaryFile() as err:
            tar = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            with tar, _engine("docker import"):
                reply = api.import_image_from_data(tar.stdout, changes=changes)
            err.seek(0)
            tar_errors = err.read().decode(errors="replace").strip()
        image_id = _imported_id(reply)
        with _engine("docker import"):
            if tar.returncode != 0:
                api.remove_image(image_id, force=True)
                raise ImageBuildFailed("tar", f"tar exited with {tar.returncode}: {tar_errors}")
            repository, _, version = tag.partition(":")
            api.tag(image_id, repository, version)

    def build(self, ctx: Path, tag: str, base: str, force: bool, detail: Progress) -> None:
        """``docker build`` of the context ``ctx`` with no network, FROM ``base``."""
        with _engine("docker build"):
            logs = self.client.api.build(
                path=str(ctx), tag=tag, buildargs={"BASE": base}, network_mode="none",
                rm=True, forcerm=True, nocache=force, pull=False, decode=True,
                labels={"org.lci.tag": tag, "org.lci.base": base},
            )  # fmt: skip
            follow(logs, detail)


def _imported_id(reply: Any) -> str:
    last = json.loads(str(reply).strip().splitlines()[-1])
    if "error" in last or not str(last.get("status", "")).startswith("sha256:"):
        raise ImageBuildFailed("docker import", str(last.get("error") or last))
    return str(last["status"])


def follow(logs: Iterable[dict[str, Any]], detail: Progress) -> None:
    """Stream the build's output; an error entry fails with the last lines as context."""
    tail: deque[str] = deque(maxlen=6)
    for entry in logs:
        if "error" in entry:
            context = " | ".join(tail)
            raise ImageBuildFailed(
                "docker build", f"{str(entry['error']).strip()} (after: {context})"
            )
        for line in str(entry.get("stream", "")).splitlines():
            if line.strip():
                tail.append(line.strip())
                detail(line.rstrip())
