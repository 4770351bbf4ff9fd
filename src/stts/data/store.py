"""The clip store: every kept frame as a JPEG, a video's frames back to back in a large shard file.

Layout of ``<store>/``: ``shard-*.bin`` (append-only, one per preparing process and run) and
``index.jsonl`` (one JSON line per finished video: shard, byte offset, frame sizes, CRC-32).

Why this shape (see benchmarks/bench_data.py for the numbers): JPEG keeps the store no larger than
the seed's one-JPEG-a-frame folders while a window of any video is one ``pread`` of contiguous bytes
plus one libjpeg-turbo decode per frame, with no file opens, no decoding of the rest of the video
and no float conversion. Raw uint8 frames would read faster but take about 10x the disk.

Atomicity: a worker appends a video's frames to its own shard and flushes; only then does the
single parent process append the video's line to the index and flush it. A reader takes the
index's complete lines only, so an interrupted run leaves at most unreferenced shard bytes and a
partial last line, which the next writer truncates before appending.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from pathlib import Path

import numpy as np
import simplejpeg

from ..errors import SttsError

INDEX = "index.jsonl"
SHARD_LIMIT = 1 << 30  # start a new shard past 1 GiB, to keep files easy to copy


def encode_frames(frames: list[np.ndarray], quality: int) -> list[bytes]:
    return [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=quality, colorspace="RGB",
                                   colorsubsampling="420") for f in frames]


def decode_frame(data: bytes, out: np.ndarray | None = None) -> np.ndarray:
    # fastdct/fastupsample: measurably faster, differences below JPEG's own error
    return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=True, buffer=out)


def read_index(store: Path) -> dict[str, dict]:
    """Finished videos by key; a partial last line (an interrupted write) is ignored; later lines win."""
    path = Path(store) / INDEX
    if not path.exists():
        return {}
    entries = {}
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            entry = json.loads(line)
            entries[entry["video"]] = entry
    return entries


class ShardWriter:
    """Appends one video at a time to this process's own shard; used in the preparing workers."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self.store.mkdir(parents=True, exist_ok=True)
        self.file = None

    def _open_new(self) -> None:
        if self.file is not None:
            self.file.close()
        self.name = f"shard-{uuid.uuid4().hex[:12]}.bin"
        self.file = open(self.store / self.name, "ab")

    def append(self, key: str, jpegs: list[bytes], **info) -> dict:
        """Write the frames, flush, and return the index entry for the parent to commit."""
        if self.file is None or self.file.tell() > SHARD_LIMIT:
            self._open_new()
        offset = self.file.tell()
        blob = b"".join(jpegs)
        self.file.write(blob)
        self.file.flush()
        return {"video": key, "shard": self.name, "offset": offset, "sizes": [len(j) for j in jpegs],
                "crc": zlib.crc32(blob), **info}


class IndexWriter:
    """The single writer of ``index.jsonl``: commits an entry only after its frames are in a shard."""

    def __init__(self, store: Path):
        path = Path(store) / INDEX
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            complete = data.rfind(b"\n") + 1
            if complete != len(data):
                with open(path, "r+b") as f:
                    f.truncate(complete)
        self.file = open(path, "ab")

    def commit(self, entry: dict) -> None:
        self.file.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class ClipStore:
    """Reads windows of stored videos. Opens shards lazily, per process, so it pickles for DataLoader workers."""

    def __init__(self, store: str | Path):
        self.root = Path(store)
        self.entries = read_index(self.root)
        for entry in self.entries.values():
            entry["starts"] = np.concatenate([[0], np.cumsum(entry["sizes"])]).tolist()
        self._files: dict[str, int] = {}
        self._pid = os.getpid()

    def __getstate__(self):
        return {**self.__dict__, "_files": {}}

    def __contains__(self, video: str) -> bool:
        return video in self.entries

    def num_frames(self, video: str) -> int:
        return len(self.entries[video]["sizes"])

    def _fd(self, shard: str) -> int:
        if self._pid != os.getpid():  # forked: never share file offsets with the parent
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = os.open(self.root / shard, os.O_RDONLY)
        return self._files[shard]

    def read_bytes(self, video: str, first: int, last: int) -> list[bytes]:
        """The JPEGs of frames ``first`` .. ``last`` - 1, read with one ``pread``."""
        entry = self.entries[video]
        starts = entry["starts"]
        blob = os.pread(self._fd(entry["shard"]), starts[last] - starts[first], entry["offset"] + starts[first])
        base = starts[first]
        return [blob[starts[i] - base:starts[i + 1] - base] for i in range(first, last)]

    def read_frames(self, video: str, indices, box: tuple[int, int, int, int] | None = None,
                    flip: bool = False) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 (len(indices), H, W, 3).

        ``box`` = (top, left, height, width) keeps only that region, mirrored if ``flip``: each
        frame is decoded into one reused buffer and only the region is copied out, which saves
        allocating and copying whole frames.
        """
        indices = np.asarray(indices)
        first, last = int(indices.min()), int(indices.max()) + 1
        jpegs = self.read_bytes(video, first, last)
        entry = self.entries[video]
        full = (entry["height"], entry["width"], 3)
        top, left, height, width = box or (0, 0, *full[:2])
        columns = slice(left + width - 1, left - 1 if left else None, -1) if flip else slice(left, left + width)
        out = np.empty((len(indices), height, width, 3), np.uint8)
        scratch = np.empty(full, np.uint8)
        decoded: dict[int, int] = {}
        for position, index in enumerate(indices.tolist()):
            if index in decoded:
                out[position] = out[decoded[index]]
            else:
                decode_frame(jpegs[index - first], scratch)
                out[position] = scratch[top:top + height, columns]
                decoded[index] = position
        return out

    def verify(self, video: str) -> str | None:
        """None if the entry's bytes match its CRC and every frame is a JPEG of the recorded size; else why not."""
        entry = self.entries[video]
        try:
            jpegs = self.read_bytes(video, 0, len(entry["sizes"]))
        except OSError as error:
            return f"unreadable shard {entry['shard']} ({error})"
        if sum(map(len, jpegs)) != sum(entry["sizes"]) or zlib.crc32(b"".join(jpegs)) != entry["crc"]:
            return f"bytes in {entry['shard']} at offset {entry['offset']} do not match their CRC"
        for number, jpeg in enumerate(jpegs):
            try:
                height, width, _, _ = simplejpeg.decode_jpeg_header(jpeg)
            except ValueError as error:
                return f"frame {number} is not a JPEG ({error})"
            if (height, width) != (entry["height"], entry["width"]):
                return f"frame {number} is {width}x{height}, the index says {entry['width']}x{entry['height']}"
        return None

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files = {}


def open_store(store: str | Path) -> ClipStore:
    if not (Path(store) / INDEX).exists():
        raise SttsError(f"{store}: no clip store here (missing {INDEX}); run `stts prepare` first")
    return ClipStore(store)
