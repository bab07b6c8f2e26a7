import pytest

from apt_uss.io.atomic import atomic_path


def test_failed_write_leaves_the_previous_output_untouched(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as staged:
            staged.mkdir()
            (staged / "half.csv").write_text("partial")
            raise RuntimeError("step failed")
    assert [p.name for p in target.iterdir()] == ["old.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left behind


def test_successful_write_replaces_the_output(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with atomic_path(target) as staged:
        staged.write_text("new")
    assert target.read_text() == "new"
