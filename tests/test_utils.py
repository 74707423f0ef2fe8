"""Shared helpers: atomic writes leave either the old file or the new one, never a part; one-line errors."""

from __future__ import annotations

import pytest

from glsmonai.utils import atomic_write, error_line, stale_temporaries


def test_atomic_write_writes_and_leaves_no_temporary(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_text("new")
        # were the process killed now, a rerun would find and remove this temporary
        assert stale_temporaries(tmp.parent, {"scan_seg.nii.gz"}) == [tmp]

    path = atomic_write(tmp_path / "sub" / "scan_seg.nii.gz", write)
    assert path == tmp_path / "sub" / "scan_seg.nii.gz"
    assert path.read_text() == "new"
    assert seen[0].parent == path.parent and seen[0].name.startswith(".") and seen[0].name.endswith(".nii.gz")
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_stale_temporaries_are_those_of_the_named_files_only(tmp_path):
    # what a SIGKILL in the middle of atomic_write leaves: its temporary, under the documented name
    for name in (".a_seg.0123abcd.tmp.nii.gz", ".b_seg.89ef0123.tmp.nii.gz", ".a_seg.notahex!.tmp.nii.gz"):
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "a_seg.nii.gz").write_bytes(b"done")
    found = stale_temporaries(tmp_path, {"a_seg.nii.gz"})
    assert [p.name for p in found] == [".a_seg.0123abcd.tmp.nii.gz"]
    assert stale_temporaries(tmp_path, {"c_seg.nii.gz"}) == []
    assert stale_temporaries(tmp_path / "absent", {"a_seg.nii.gz"}) == []


@pytest.mark.parametrize(
    "err, line",
    [
        (RuntimeError("reader failed: no central directory. This is an internal error. More text.\nsecond line"),
         "RuntimeError: reader failed: no central directory"),
        (EOFError(), "EOFError"),
        (ValueError("bad value."), "ValueError: bad value"),
    ],
)
def test_error_line_is_the_type_and_first_sentence(err, line):
    assert error_line(err) == line
