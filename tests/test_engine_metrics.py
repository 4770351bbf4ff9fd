import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from stts.engine.metrics import MetricMeter, confusion_matrix, per_class_accuracy, topk_correct


def test_topk_and_confusion_match_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=generator)
    target = torch.randint(0, 7, (50,), generator=generator)
    for k in (1, 5):
        expected = MulticlassAccuracy(num_classes=7, top_k=k, average="micro")(logits, target)
        assert topk_correct(logits, target, k).item() == round(expected.item() * 50)
    expected = MulticlassConfusionMatrix(num_classes=7)(logits, target)
    assert torch.equal(confusion_matrix(logits.argmax(1), target, 7), expected)


def test_top5_with_fewer_classes_counts_everything():
    logits = torch.randn(6, 3)
    assert topk_correct(logits, torch.tensor([0, 1, 2, 0, 1, 2]), 5).item() == 6


def test_meter_sums_batches_into_epoch_metrics():
    meter = MetricMeter(3, torch.device("cpu"))
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    target = torch.tensor([0, 1, 0, 2])
    meter.update(logits[:2], target[:2])
    meter.update(logits[2:], target[2:])
    result = meter.compute()
    expected_loss = torch.nn.functional.cross_entropy(logits, target).item()
    assert result.count == 4
    assert abs(result.loss - expected_loss) < 1e-6
    assert result.top1 == 50.0
    assert result.confusion.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert per_class_accuracy(result.confusion).tolist() == [50.0, 100.0, 0.0]
