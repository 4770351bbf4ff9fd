"""Loss, top-k accuracy and confusion matrix, accumulated as sums so that DDP reduces them exactly.

Every quantity is a sum over clips (loss sum, correct counts, confusion counts), so
summing the per-rank accumulators with one ``all_reduce`` gives the same numbers as a
single process that saw every clip once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


def topk_correct(logits: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows of ``logits`` (N, K) whose ``target`` is among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices  # (N, k)
    return (top == target[:, None]).any(dim=1).sum()


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    flat = target.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> torch.Tensor:
    """Recall of each class in percent (NaN for a class without clips)."""
    matrix = matrix.double()
    return 100.0 * matrix.diagonal() / matrix.sum(dim=1)


@dataclass
class EpochMetrics:
    loss: float
    top1: float  # percent
    top5: float  # percent
    count: int
    confusion: torch.Tensor  # (K, K) int64 on the CPU

    def as_row(self, split: str) -> dict[str, float]:
        return {f"{split}_loss": self.loss, f"{split}_top1_accuracy": self.top1, f"{split}_top5_accuracy": self.top5}


class MetricMeter:
    """Sums loss, top-1/top-5 hits and the confusion matrix over the batches of one pass."""

    def __init__(self, num_classes: int, device: torch.device):
        self.num_classes = num_classes
        # float64 so that a long epoch's loss sum does not lose precision
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, clips, top1 hits, top5 hits
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        """``logits`` (N, K), ``target`` (N,); ``loss`` is the batch mean (recomputed when not given)."""
        logits = logits.float()
        if loss is None:
            loss = torch.nn.functional.cross_entropy(logits, target)
        n = target.numel()
        batch = torch.stack([
            loss.detach().double() * n,
            torch.tensor(n, dtype=torch.float64, device=logits.device),
            topk_correct(logits, target, 1).double(),
            topk_correct(logits, target, 5).double(),
        ])
        self.sums += batch
        self.confusion += confusion_matrix(logits.argmax(dim=1), target, self.num_classes)

    def all_reduce(self) -> None:
        """Sum the accumulators of every rank (no-op without a process group)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
            dist.all_reduce(self.confusion)

    def compute(self) -> EpochMetrics:
        loss, count, top1, top5 = self.sums.tolist()
        count = int(count)
        scale = 100.0 / max(count, 1)
        return EpochMetrics(
            loss=loss / max(count, 1),
            top1=top1 * scale,
            top5=top5 * scale,
            count=count,
            confusion=self.confusion.cpu(),
        )
