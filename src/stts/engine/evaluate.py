"""Evaluation of a checkpoint: clip accuracy by the seed's protocol and video accuracy over many views.

Clip accuracy: one clip per video, the middle window and the centre crop (the seed's test).
Video accuracy: ``windows x crops`` views per video (e.g. 10x3), softmax scores averaged.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..clip import ClipSpec
from ..errors import SttsError
from ..files import write_text
from ..runtime import load_model
from .config import default_workers
from .metrics import EpochMetrics, MetricMeter, per_class_accuracy
from .reporting import confusion_figure, save_figure


def parse_views(text: str) -> tuple[int, int]:
    """'10x3' -> (10 windows, 3 crops); crops are 1 (centre) or 3."""
    try:
        windows, crops = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise SttsError(f"--views {text!r}: expected WINDOWSxCROPS, e.g. 10x3 or 1x1") from None
    if windows < 1 or crops not in (1, 3):
        raise SttsError(f"--views {text!r}: windows must be at least 1 and crops 1 or 3")
    return windows, crops


@torch.inference_mode()
def video_metrics(model, dataset: Dataset, spec: ClipSpec, num_classes: int, batch_size: int, workers: int,
                  device: torch.device, autocast, desc: str) -> EpochMetrics:
    """Softmax averaged over each item's views; a single-view dataset gives clip accuracy."""
    model.eval()
    meter = MetricMeter(num_classes, device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    for clips, labels in tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True, leave=False):
        if clips.dim() == 5:  # one view: (N, C, T, H, W)
            clips = clips[:, None]
        n, views = clips.shape[:2]
        with autocast():
            logits = model(spec.model_input(clips.flatten(0, 1), device))  # (N * V, K)
        probabilities = logits.float().softmax(dim=1).view(n, views, -1).mean(dim=1)  # (N, K)
        log_p = probabilities.clamp_min(1e-12).log()
        y = labels.to(device)
        meter.update(log_p, y, torch.nn.functional.nll_loss(log_p, y))
    return meter.compute()


def evaluate_checkpoint(path: str | Path, split: str = "test", views: str = "10x3", data_type: str | None = None,
                        data_root: str | None = None, batch_size: int = 16, workers: int | None = None,
                        precision: str = "auto", out: str | Path | None = None, device: str = "auto") -> dict:
    """Evaluate checkpoint ``path`` on ``split``; writes summary.json, confusion PNG/CSV and per-class CSV.

    Clips are made by the checkpoint's clip spec; ``data_type`` and ``data_root`` default to the
    ones it was trained with. Returns the summary (accuracies in percent).
    """
    from ..data import ClipDataset, dataset_root

    if split not in ("test", "val"):
        raise SttsError(f"--split {split!r}: choose test or val")
    windows, crops = parse_views(views)
    workers = default_workers() if workers is None else workers
    loaded = load_model(path, device, precision)
    config, classes, spec = loaded.config, loaded.classes, loaded.spec

    data_type = data_type or config["data_type"]
    root = dataset_root(data_type, data_root or config.get("data_root", "data"))
    clip_set = ClipDataset(root, split, spec)
    if list(clip_set.classes) != classes:
        raise SttsError(f"{path}: trained on {len(classes)} classes ({', '.join(classes[:3])}, ...), {data_type} "
                        f"has {len(clip_set.classes)} ({', '.join(clip_set.classes[:3])}, ...); "
                        "evaluate it on the data it was trained on")
    k, model, device, autocast = len(classes), loaded.model, loaded.device, loaded.autocast
    clip = video_metrics(model, clip_set, spec, k, batch_size, workers, device, autocast, f"{split} clips")
    asked, crops = f"{windows}x{crops}", spec.distinct_crops(crops)
    video_set = ClipDataset(root, split, spec, windows=windows, crops=crops)
    video = video_metrics(model, video_set, spec, k, max(1, batch_size // (windows * crops)), workers, device,
                          autocast, f"{split} videos {windows}x{crops}")

    out = Path(out) if out else Path(path).parent / f"eval_{Path(path).stem}_{split}"
    out.mkdir(parents=True, exist_ok=True)
    clip_per_class, video_per_class = per_class_accuracy(clip.confusion), per_class_accuracy(video.confusion)
    summary = {
        "checkpoint": str(path), "data_type": data_type, "split": split, "videos": video.count,
        "views": f"{windows}x{crops}", "views_asked": asked, "precision": loaded.precision,
        "clip_top1": clip.top1, "clip_top5": clip.top5, "clip_loss": clip.loss,
        "video_top1": video.top1, "video_top5": video.top5, "video_loss": video.loss,
        "per_class": {name: {"videos": int(video.confusion[i].sum()), "clip_top1": _number(clip_per_class[i]),
                             "video_top1": _number(video_per_class[i])} for i, name in enumerate(classes)},
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text(out / "per_class.csv", _per_class_csv(summary["per_class"]))
    write_text(out / "confusion.csv", _confusion_csv(video.confusion, classes))
    title = f"{split.capitalize()} Confusion Matrix, {windows}x{crops} views ({Path(path).name})"
    save_figure(confusion_figure(video.confusion, classes, title), out / "confusion.png")
    summary["out"] = str(out)
    return summary


def _number(value: torch.Tensor) -> float | None:
    value = float(value)
    return None if value != value else value  # NaN (a class without videos) -> null in JSON


def _per_class_csv(per_class: dict[str, dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class", "videos", "clip_top1_accuracy", "video_top1_accuracy"])
    for name, row in per_class.items():
        writer.writerow([name, row["videos"], *("" if v is None else f"{v:.4g}" for v in
                                                (row["clip_top1"], row["video_top1"]))])
    return buffer.getvalue()


def _confusion_csv(matrix: torch.Tensor, classes: list[str]) -> str:
    """Rows: true class, columns: predicted class, counts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, matrix.tolist(), strict=True):
        writer.writerow([name, *row])
    return buffer.getvalue()
