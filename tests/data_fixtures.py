"""Fixtures in the real formats: tiny MPEG-4 AVIs, UCF101/HMDB51 trees and lists, zip and stored RAR 4 archives."""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
HMDB_CLASSES = ["brush_hair", "cartwheel"]
HMDB_VIDEOS = ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Brushing Hair [with] (odd) name!_0.avi",
               "Blonde_being_brushed_f_cm_np2_ri_med_2.avi"]


def write_video(path: Path, frames: int = 24, width: int = 64, height: int = 48, seed: int = 0) -> Path:
    """A real MPEG-4 part 2 AVI with a moving bright square on a gradient."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = base.copy()
            x = (i * 2 + int(rng.integers(0, 8))) % (width - 8)
            frame[10:18, x:x + 8] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def ucf_class_names(count: int = 101) -> list[str]:
    return ["ApplyEyeMakeup", "HandstandPushups", *(f"Action{i:03d}" for i in range(count - 3)), "YoYo"][:count]


def ucf_split_lines(classes: list[str], train_total: int = 9537, test_total: int = 3783):
    """Official-format classInd, trainlist01 and testlist01 lines: test = groups 1-7, train = groups 8-25."""
    class_lines = [f"{i + 1} {c}" for i, c in enumerate(classes)]
    train, test = [], []
    for total, groups, out, indexed in ((train_total, range(8, 26), train, True), (test_total, range(1, 8), test, False)):
        for n in range(total):
            c = n % len(classes)
            k = n // len(classes)
            group, clip = groups[k % len(groups)], k // len(groups) + 1
            stem = "HandStandPushups" if classes[c] == "HandstandPushups" else classes[c]
            path = f"{classes[c]}/v_{stem}_g{group:02d}_c{clip:02d}.avi"
            out.append(f"{path} {c + 1}" if indexed else path)
    return class_lines, train, test


def hmdb_split_lines(classes: list[str], train: int = 70, test: int = 30, unused: list[int] | None = None):
    """``{<class>_test_split1.txt: lines}`` with tags 1/2/0 and the official trailing space."""
    unused = unused or [0] * len(classes)
    files = {}
    for c, name in enumerate(classes):
        tags = ["1"] * train + ["2"] * test + ["0"] * unused[c]
        files[f"{name}_test_split1.txt"] = [f"{name}_video_{i:03d}.avi {tag} " for i, tag in enumerate(tags)]
    return files


def write_crlf(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())
    return path


def make_ucf_tree(root: Path, per_class_train: int = 2, per_class_test: int = 1, frames: int = 24):
    """UCF-101/<Class>/v_*.avi and ucfTrainTestlist/ (CRLF) under ``root``; returns (videos dir, lists dir)."""
    videos, lists = root / "UCF-101", root / "ucfTrainTestlist"
    train, test = [], []
    for c, name in enumerate(UCF_CLASSES):
        stem = "HandStandPushups" if name == "HandstandPushups" else name
        for i in range(per_class_train + per_class_test):
            group = 8 + i if i < per_class_train else 1 + i
            relative = f"{name}/v_{stem}_g{group:02d}_c01.avi"
            write_video(videos / relative, frames=frames, seed=c * 10 + i)
            (train if i < per_class_train else test).append(f"{relative} {c + 1}" if i < per_class_train else relative)
    write_crlf(lists / "classInd.txt", [f"{i + 1} {n}" for i, n in enumerate(UCF_CLASSES)])
    write_crlf(lists / "trainlist01.txt", train)
    write_crlf(lists / "testlist01.txt", test)
    return videos, lists


def make_hmdb_tree(root: Path, frames: int = 24):
    """<class>/<video>.avi (odd names) and testTrainMulti_7030_splits/ under ``root``: per class 1 train, 1 test, 1 val."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(HMDB_CLASSES):
        for i, video in enumerate(HMDB_VIDEOS):
            write_video(root / name / video, frames=frames, seed=c * 10 + i)
        lines = [f"{video} {tag} " for video, tag in zip(HMDB_VIDEOS, ("1", "2", "0"), strict=True)]
        for split in (1, 2, 3):
            write_crlf(splits / f"{name}_test_split{split}.txt", lines)
    return root


def write_zip(path: Path, root: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            zf.write(file, prefix + file.relative_to(root).as_posix())
    return path


def _rar_block(head_type: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def write_rar4(path: Path, files: dict[str, bytes]) -> Path:
    """A RAR 4 archive with stored (method 0x30, uncompressed) entries; names use '\\' as RAR on Windows does."""
    dos_time = time.localtime(1_600_000_000)
    ftime = ((dos_time.tm_year - 1980) << 25 | dos_time.tm_mon << 21 | dos_time.tm_mday << 16
             | dos_time.tm_hour << 11 | dos_time.tm_min << 5 | dos_time.tm_sec // 2)
    out = bytearray(b"Rar!\x1a\x07\x00")
    out += _rar_block(0x73, 0, b"\x00" * 6)
    for name, data in files.items():
        encoded = name.replace("/", "\\").encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), ftime, 20, 0x30,
                           len(encoded), 0x20) + encoded
        out += _rar_block(0x74, 0x8000, body) + data
    out += _rar_block(0x7B, 0x4000, b"")
    path.write_bytes(bytes(out))
    return path


def rar_of_tree(path: Path, root: Path, prefix: str = "") -> Path:
    files = {prefix + p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return write_rar4(path, files)


def tiny_motion_family(root: Path, family: str) -> Path:
    """``root``/motion-FAMILY prepared with one video a class in each split, frames stored 48 pixels high."""
    from stts.data import prepare_dataset

    out = root / f"motion-{family}"
    prepare_dataset(f"motion-{family}", [], out, height=48, workers=1, progress=False,
                    options={"train_per_class": 1, "val_per_class": 1, "test_per_class": 1})
    return out
