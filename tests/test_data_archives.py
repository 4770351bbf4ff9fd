"""Archive extraction through the real tools: stored RAR 4 fixtures, nested RARs, zip, unsafe names, no tool."""

from __future__ import annotations

import shutil
import stat
import zipfile

import pytest

from data_fixtures import write_rar4
from stts.data.archives import extract, list_entries
from stts.errors import SttsError


@pytest.fixture(params=["unar", "bsdtar"])
def rar_tool_only(request, tmp_path, monkeypatch):
    """PATH holding just one extractor, so both real tools are exercised."""
    tools = {"unar": ["unar", "lsar"], "bsdtar": ["bsdtar"]}[request.param]
    if not all(shutil.which(t) for t in tools):
        pytest.skip(f"{request.param} not installed (.ci/run installs it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    return request.param


def test_rar_and_nested_rars_extract(tmp_path, rar_tool_only):
    inner = write_rar4(tmp_path / "brush_hair.rar", {"brush_hair/a (1) [x].avi": b"video-bytes"})
    outer = write_rar4(tmp_path / "hmdb51_org.rar", {"brush_hair.rar": inner.read_bytes()})
    target = extract(outer, tmp_path / "out")
    assert (target / "brush_hair" / "a (1) [x].avi").read_bytes() == b"video-bytes"
    assert not (target / "brush_hair.rar").exists()
    (target / "brush_hair" / "a (1) [x].avi").unlink()
    extract(outer, tmp_path / "out")  # done before: skipped, not redone
    assert not (target / "brush_hair" / "a (1) [x].avi").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_rar_entry_outside_target_is_refused(tmp_path, name):
    archive = write_rar4(tmp_path / "bad.rar", {"ok.txt": b"1", name: b"2"})
    names = [name for name, _ in list_entries(archive)]
    assert "ok.txt" in names
    with pytest.raises(SttsError, match="refusing entry"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "..\\evil.txt", "C:/evil.txt"])
def test_zip_entry_outside_target_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, b"x")
    with pytest.raises(SttsError, match="refusing entry"):
        extract(archive, tmp_path / "out")


@pytest.mark.parametrize("through_the_link", [True, False])
def test_a_zip_holding_a_symbolic_link_is_refused_cleanly(tmp_path, through_the_link):
    archive = tmp_path / "lists.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("ucfTrainTestlist/elsewhere")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16  # as `zip -y` stores a link
        zf.writestr(link, str(tmp_path / "outside"))
        zf.writestr("ucfTrainTestlist/elsewhere/classInd.txt" if through_the_link else "ucfTrainTestlist/a.txt", "1 A")
    with pytest.raises(SttsError, match="lists.zip: refusing entry 'ucfTrainTestlist/elsewhere': a symbolic link"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "outside").exists() and not list((tmp_path / "out").rglob("*.txt"))


def test_missing_rar_tool_names_the_packages(tmp_path, monkeypatch):
    archive = write_rar4(tmp_path / "UCF101.rar", {"UCF-101/a.txt": b"x"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SttsError, match="unar.*libarchive-tools"):
        extract(archive, tmp_path / "out")


def test_not_an_archive(tmp_path):
    path = tmp_path / "UCF101.rar"
    path.write_bytes(b"not really a rar")
    with pytest.raises(SttsError, match="not a zip or RAR"):
        list_entries(path)
