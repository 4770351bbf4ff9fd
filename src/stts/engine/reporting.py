"""What a run leaves for people: statistics.csv, PNG curves and confusion matrices, TensorBoard, visdom.

Only rank 0 creates a :class:`Reporter`. Every epoch it gets the full history, so a resumed
run rewrites the same files an uninterrupted one would have.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..errors import SttsError
from ..files import atomic_path, write_text

SPLITS = ("train", "val", "test")
COLUMNS = ["epoch"] + [f"{s}_{m}" for s in SPLITS for m in ("loss", "top1_accuracy", "top5_accuracy")]
# the seed's visdom windows: title -> statistics.csv suffix
CURVES = {"Loss": "loss", "Top1 Accuracy": "top1_accuracy", "Top5 Accuracy": "top5_accuracy"}


def write_statistics(history: list[dict], path: Path) -> None:
    """One row per epoch, the seed's columns; accuracies in percent."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def read_statistics(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(file)]


def curves_figure(history: list[dict], title: str = "") -> Figure:
    """Loss, top-1 and top-5 against the epoch, one line per split."""
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    epochs = [row["epoch"] for row in history]
    for axes, (name, suffix) in zip(figure.subplots(1, 3), CURVES.items(), strict=True):
        for split in SPLITS:
            axes.plot(epochs, [row[f"{split}_{suffix}"] for row in history], marker="o", markersize=3, label=split)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.set_ylabel("cross-entropy" if suffix == "loss" else "%")
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    return figure


def confusion_figure(matrix: torch.Tensor, classes: list[str], title: str) -> Figure:
    """Rows: true class, columns: predicted; colour = share of the row, numbers = counts (few classes)."""
    counts = matrix.numpy()
    k = len(classes)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(4.0, 0.22 * k + 2.5), 30.0)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    font = 8 if k <= 30 else max(3, int(8 - k / 25))
    axes.set_xticks(range(k), classes, rotation=90, fontsize=font)
    axes.set_yticks(range(k), classes, fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    colour = "white" if shares[i, j] > 0.5 else "black"
                    axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=font, color=colour)
    accuracy = 100.0 * np.trace(counts) / max(counts.sum(), 1)
    axes.set_title(f"{title} (top-1 {accuracy:.1f} %)")
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    return figure


FIGURE_DPI = 110


def render_figure(figure: Figure) -> np.ndarray:
    """The figure's pixels, (H, W, 3) uint8 at ``FIGURE_DPI``: drawn once, for its PNG and for TensorBoard.

    TensorBoard's ``add_figure`` draws a figure again; with a fresh layout each time, the drawing, not the
    PNG encoding, is what a figure costs (0.1-0.3 s on a 2-core CPU: 1.2 s an epoch for the four before).
    """
    figure.set_dpi(FIGURE_DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(pixels: np.ndarray, path: Path) -> None:
    with atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(pixels).save(temporary, format="PNG")


def save_figure(figure: Figure, path: Path) -> np.ndarray:
    """Write ``figure`` to ``path`` as a PNG (atomically); returns its pixels."""
    pixels = render_figure(figure)
    save_png(pixels, path)
    return pixels


class Reporter:
    """Writes statistics.csv and the PNGs into ``run``; logs to TensorBoard and, if asked, visdom."""

    def __init__(self, run: Path, classes: list[str], env: str, tensorboard: bool = True, visdom: str | None = None):
        self.run = Path(run)
        self.classes = classes
        self.env = env
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run / "tensorboard"))
        self.visdom = connect_visdom(visdom, env) if visdom else None

    def epoch(self, history: list[dict], confusions: dict[str, torch.Tensor], lr: float) -> None:
        row = history[-1]
        epoch = row["epoch"]
        write_statistics(history, self.run / "statistics.csv")
        save_figure(curves_figure(history, title=self.env), self.run / "curves.png")
        for split, matrix in confusions.items():
            figure = confusion_figure(matrix, self.classes, f"{split.capitalize()} Confusion Matrix, epoch {epoch}")
            pixels = save_figure(figure, self.run / f"confusion_{split}.png")
            if self.writer:
                self.writer.add_image(f"Confusion Matrix/{split}", pixels, epoch, dataformats="HWC")
        if self.writer:
            for name, suffix in CURVES.items():
                for split in SPLITS:
                    self.writer.add_scalar(f"{name}/{split}", row[f"{split}_{suffix}"], epoch)
            self.writer.add_scalar("Learning Rate", lr, epoch)
            self.writer.flush()
        if self.visdom:
            self._visdom(history, confusions)

    def _visdom(self, history: list[dict], confusions: dict[str, torch.Tensor]) -> None:
        epochs = np.array([row["epoch"] for row in history], dtype=float)
        for name, suffix in CURVES.items():
            values = np.array([[row[f"{s}_{suffix}"] for s in SPLITS] for row in history], dtype=float)
            self.visdom.line(
                X=np.repeat(epochs[:, None], 3, axis=1), Y=values, win=name,
                opts={"title": name, "legend": list(SPLITS), "xlabel": "epoch"},
            )
        for split, matrix in confusions.items():
            title = f"{split.capitalize()} Confusion Matrix"
            self.visdom.heatmap(
                X=matrix.numpy().astype(float), win=title,
                opts={"title": title, "columnnames": self.classes, "rownames": self.classes},
            )

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def connect_visdom(address: str, env: str):
    """``HOST:PORT`` (or ``HOST``, port 8097) -> a connected visdom client, or a clear error."""
    try:
        import visdom
    except ImportError:
        raise SttsError("--visdom needs the visdom package: pip install 'stts[visdom]'") from None
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "8097")
    if not port.isdigit():
        raise SttsError(f"--visdom {address!r}: expected HOST:PORT, e.g. 127.0.0.1:8097")
    server = host if host.startswith("http") else f"http://{host or '127.0.0.1'}"
    client = visdom.Visdom(server=server, port=int(port), env=env, raise_exceptions=True, use_incoming_socket=False)
    if not client.check_connection(timeout_seconds=5):
        raise SttsError(f"--visdom {address}: no visdom server answers; start one with `visdom -port {port}`")
    return client
