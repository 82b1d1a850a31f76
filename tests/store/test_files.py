"""store.files.FileStore: kept uploads by content hash, on a real folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from store.errors import FileStoreError, StoreError
from store.files import TEMP_GRACE_SECONDS, FileStore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _all_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_for_data_dir_creates_nothing_until_put(tmp_path: Path) -> None:
    store = FileStore.for_data_dir(tmp_path / "data")
    assert store.root == tmp_path / "data" / "files"
    assert store.shas() == set()
    assert store.path("a" * 64) is None
    assert not (tmp_path / "data").exists()


def test_put_names_the_copy_by_its_hash_in_a_shard(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    data = b"%PDF-1.4 pretend pdf bytes"
    sha = _sha(data)
    path = store.put(data)
    assert path == tmp_path / "files" / sha[:2] / f"{sha}.pdf"
    assert path.read_bytes() == data
    assert store.path(sha) == path
    assert store.shas() == {sha}


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    data = b"same content, uploaded twice under different names"
    first = store.put(data, suffix=".txt")
    mtime = first.stat().st_mtime_ns
    second = store.put(data, suffix=".txt")
    assert first == second
    assert first.stat().st_mtime_ns == mtime  # not rewritten
    again_as_md = store.put(data, suffix=".md")
    assert again_as_md == first  # one copy per content, whatever the suffix
    assert _all_files(store.root) == [first]


def test_suffix_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    for suffix in (".exe", "/../x", "", ".PDF", ".pdf/"):
        with pytest.raises(FileStoreError, match="suffix"):
            store.put(b"x", suffix=suffix)
    assert not store.root.exists()


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "A" * 64,  # uppercase
        "a" * 63,
        "a" * 65,
        "a" * 62 + "/.",
        "g" * 64,
        "",
        "a" * 64 + "\n",
    ],
)
def test_hostile_hash_never_becomes_a_path(tmp_path: Path, bad: str) -> None:
    store = FileStore(tmp_path / "files")
    store.put(b"keep me")
    for call in (store.path, store.delete):
        with pytest.raises(StoreError) as info:
            call(bad)
        assert isinstance(info.value, FileStoreError)
        assert repr(bad) in str(info.value)
    assert store.shas() == {_sha(b"keep me")}


def test_delete_removes_the_copy(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    sha = _sha(b"to delete")
    store.put(b"to delete")
    assert store.delete(sha) is True
    assert store.path(sha) is None
    assert store.delete(sha) is False
    assert _all_files(store.root) == []


def test_collect_keeps_live_copies_and_removes_the_rest(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    live = [store.put(f"live {i}".encode()) for i in range(3)]
    dead = [store.put(f"dead {i}".encode(), suffix=".md") for i in range(2)]
    live_shas = {_sha(f"live {i}".encode()) for i in range(3)}
    removed = store.collect(live_shas)
    assert removed == sorted(_sha(f"dead {i}".encode()) for i in range(2))
    assert store.shas() == live_shas
    assert all(path.exists() for path in live)
    assert not any(path.exists() for path in dead)
    assert store.collect(live_shas) == []


def test_collect_leaves_young_temp_files_and_removes_old_ones(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    kept = store.put(b"kept")
    young = kept.parent / ".tmp-young.part"
    old = kept.parent / ".tmp-old.part"
    young.write_bytes(b"a write in progress")
    old.write_bytes(b"left by a killed write")
    stale = time.time() - TEMP_GRACE_SECONDS - 5
    os.utime(old, (stale, stale))
    foreign = store.root / "README"
    foreign.write_text("not ours")
    assert store.collect({_sha(b"kept")}) == []
    assert young.exists()
    assert not old.exists()
    assert foreign.exists()  # only the store's own names are touched
    assert store.shas() == {_sha(b"kept")}


def test_put_writes_through_a_temp_file_never_the_final_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "files")
    data = os.urandom(256 * 1024)
    final = store.root / _sha(data)[:2] / f"{_sha(data)}.pdf"
    seen: list[tuple[bool, bytes]] = []
    real_replace = os.replace

    def watching_replace(source: str, destination: str | Path) -> None:
        # At the moment of the rename the final name is still absent and the temp file is whole.
        seen.append((Path(destination).exists(), Path(source).read_bytes()))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", watching_replace)
    assert store.put(data) == final
    assert seen == [(False, data)]
    assert _all_files(store.root) == [final]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "files")

    def full_disk(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(FileStoreError, match="No space left on device"):
        store.put(b"never whole")
    assert _all_files(store.root) == []
    assert store.path(_sha(b"never whole")) is None


@contextmanager
def _unprivileged() -> Iterator[None]:
    """Run the block as a user without write access: root writes anywhere, so it becomes nobody."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_permission_denied_names_the_folder_and_the_fix() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        parent = Path(folder)
        parent.chmod(0o555)  # readable and traversable by anyone, writable by no one but root
        store = FileStore(parent / "files")
        try:
            with _unprivileged(), pytest.raises(FileStoreError) as info:
                store.put(b"data")
        finally:
            parent.chmod(0o755)
    message = str(info.value)
    assert "permission denied" in message
    assert repr(str(parent / "files")) in message
    assert "writable" in message
