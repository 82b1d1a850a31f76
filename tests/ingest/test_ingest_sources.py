"""Discovery reports what it leaves out: hidden files and folders are listed as ``skipped``."""

from __future__ import annotations

from pathlib import Path

from ingest.sources import discover


def test_hidden_files_and_folders_are_reported_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    for name in ("a.pdf", "..pdf", ".notes.txt", ".DS_Store", "sub/b.md", "sub/.draft.md", ".cache/c.txt"):
        (tmp_path / name).write_text("some text")
    sources, results = discover([tmp_path])
    assert [s.file_name for s in sources] == ["a.pdf"]
    skipped = {Path(r.path).name: r for r in results if r.status == "skipped"}
    assert set(skipped) == {"..pdf", ".notes.txt"}  # .DS_Store is no document: not listed
    assert all(r.error is None and "hidden file" in str(r.note) for r in skipped.values())
    assert "name the file itself" in str(skipped["..pdf"].note)
    assert not [r for r in results if r.status == "failed"]

    deep, deep_results = discover([tmp_path], recursive=True)
    assert [s.file_name for s in deep] == ["a.pdf", "b.md"]
    reported = {str(Path(r.path).relative_to(tmp_path)): str(r.note) for r in deep_results}
    assert set(reported) == {"..pdf", ".notes.txt", ".cache", "sub/.draft.md"}
    assert "hidden folder" in reported[".cache"]
    assert [r.to_json()["status"] for r in deep_results] == ["skipped"] * 4

    # Named itself, a hidden file is ingested.
    named, named_results = discover([tmp_path / ".notes.txt"])
    assert [s.file_name for s in named] == [".notes.txt"] and named_results == []


def test_a_folder_with_only_hidden_files_fails_and_lists_them(tmp_path: Path) -> None:
    (tmp_path / ".only.pdf").write_text("x")
    sources, results = discover([tmp_path])
    assert sources == []
    assert sorted(r.status for r in results) == ["failed", "skipped"]
