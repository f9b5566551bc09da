"""History entries to a notebook, without a kernel."""

import base64

import nbformat

from interpreter.inspection.notebook import build_notebook

PNG = b"\x89PNG\r\n\x1a\nfake"


def entry(code, transcript, **more):
    return {"id": "exec_1", "code": code, "status": "ok", "transcript": transcript, **more}


def test_cells_outputs_and_embedded_images():
    entries = [
        entry("print(1)", [{"type": "stream", "name": "stdout", "text": "1\n"}]),
        entry(
            "plot()",
            [
                {"type": "image", "file_id": "file-a", "mime": "image/png"},
                {"type": "execute_result", "data": {"text/plain": "3"}, "execution_count": 2},
                {"type": "error", "ename": "E", "evalue": "v", "traceback": ["tb"]},
            ],
            execution_count=2,
        ),
        entry("gone()", [{"type": "image", "file_id": "file-purged", "mime": "image/png"}]),
        {"id": "exec_4", "code": "while True: pass", "status": "running"},
    ]
    nb = build_notebook(entries, {"file-a": PNG}.get, "title")
    nbformat.validate(nb)
    title, first, second, third, fourth = nb.cells
    assert title.cell_type == "markdown" and "title" in title.source
    assert first.outputs[0].text == "1\n"
    image, result, error = second.outputs
    assert base64.b64decode(image.data["image/png"]) == PNG
    assert result.execution_count == 2 and result.data["text/plain"] == "3"
    assert (error.ename, error.evalue) == ("E", "v")
    assert "purged" in third.outputs[0].text
    assert fourth.outputs == [] and fourth.metadata["lci"]["status"] == "running"
    # what nbformat writes reads back as the same notebook
    assert nbformat.reads(nbformat.writes(nb), as_version=4) == nb
