import hashlib
import io

import anyio
import pytest

from interpreter.errors import FileTooLarge, InvalidFilename, NoSuchFile
from interpreter.files import FileStore
from interpreter.store import Store


@pytest.fixture
def files(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    yield FileStore(store, tmp_path / "blobs", max_upload_bytes=1000)
    store.close()


def test_upload_and_read_back_exact_bytes(files, tmp_path):
    async def main():
        data = bytes(range(256)) * 3
        fid = await files.upload(io.BytesIO(data), filename="bin.dat", thread_id="t1")
        assert fid.startswith("file-") and len(fid) == 29
        assert await files.content(fid) == data
        info = await files.get(fid)
        assert (info.filename, info.bytes, info.purpose, info.thread_id) == (
            "bin.dat",
            768,
            "assistants",
            "t1",
        )
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        p = tmp_path / "report.csv"
        p.write_text("a,b\n")
        fid2 = await files.upload(p)
        assert (await files.get(fid2)).mime_type == "text/csv"
        assert {f.id for f in await files.list()} == {fid, fid2}

    anyio.run(main)


def test_unknown_id_and_bad_input(files):
    async def main():
        with pytest.raises(NoSuchFile, match="file-nope"):
            await files.content("file-nope")
        with pytest.raises(InvalidFilename):
            await files.upload(b"x", filename="../escape")
        with pytest.raises(FileTooLarge):
            await files.upload(b"x" * 1001, filename="big.bin")
        assert await files.list() == []
        assert list((files.blobs / "tmp").iterdir()) == []  # nothing half-written left

    anyio.run(main)


def test_same_bytes_share_one_blob_and_delete_keeps_the_other(files):
    async def main():
        a = await files.upload(b"same", filename="a.txt")
        b = await files.upload(b"same", filename="b.txt")
        await files.delete(a)
        assert await files.content(b) == b"same"
        await files.delete(b)
        assert not files.blob_path(hashlib.sha256(b"same").hexdigest()).exists()

    anyio.run(main)
