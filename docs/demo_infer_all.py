"""`stts infer` on every held-out test video of synthetic-motion; prints how many it named right.

    .venv/bin/python docs/demo_infer_all.py [runs/demo] [data/synthetic-motion]

The README's "stts infer on all 168 held-out test videos" row. A video's class is its folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    videos = Path(sys.argv[2] if len(sys.argv) > 2 else "data/synthetic-motion") / "videos"
    listed = (videos / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    paths = [str(videos / "UCF-101" / name) for name in listed]
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "stts", "infer", *paths, "--checkpoint", str(run / "best.pt"),
                        "--out", out], check=True, stdout=subprocess.DEVNULL)
        results = [json.loads(path.read_text()) for path in Path(out).glob("*.json")]
    right = sum(result["top1"] == Path(result["video"]).parent.name for result in results)
    print(f"stts infer on {len(results)} held-out test videos: {right}/{len(results)} right "
          f"({100 * right / len(results):.1f} %)")


if __name__ == "__main__":
    main()
