"""The four networks: the seed's parameter counts, shapes, gradients and fast paths."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from stts.cli import main
from stts.errors import SttsError
from stts.models import build_model, list_models
from stts.models.layers import Conv3d, GridAttentionGate, fold_batch_norms
from stts.models.resnet import layout_of, to_training_layout
from stts.models.summary import count_parameters
from stts.runtime import bf16_supported

SEED_COUNTS = {
    ("c3d", 101): 78_409_573,
    ("c3d", 51): 78_204_723,
    ("r2plus1d", 101): 33_220_990,
    ("r2plus1d", 51): 33_195_340,
    ("stts", 101): 33_208_373,
    ("stts", 51): 33_182_723,
    ("stts-a", 101): 37_344_339,
    ("stts-a", 51): 37_318_689,
}
MODELS = list_models()


def test_registry_lists_the_four_networks():
    assert sorted(MODELS) == ["c3d", "r2plus1d", "stts", "stts-a"]


@pytest.mark.parametrize(("name", "classes"), list(SEED_COUNTS))
def test_parameter_count_equals_the_seed(name, classes):
    with torch.device("meta"):
        model = build_model(name, classes)
    assert count_parameters(model) == SEED_COUNTS[(name, classes)]


@pytest.mark.parametrize("name", MODELS)
def test_count_follows_the_structure_for_any_class_count(name):
    # only the classifier depends on the class count: one weight row and one bias per class
    with torch.device("meta"):
        counts = [count_parameters(build_model(name, c)) for c in (10, 11, 51)]
    features = {"c3d": 4096, "r2plus1d": 512, "stts": 512, "stts-a": 512}[name]
    assert counts[1] - counts[0] == features + 1
    assert counts[2] - counts[0] == 41 * (features + 1)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("clip", [(32, 112, 112), (16, 112, 112), (8, 64, 64)])
def test_full_width_output_shape(name, clip):
    # the meta device runs every layer's shape logic without the 150+ GFLOPs
    with torch.device("meta"):
        model = build_model(name, 101).eval()
        logits = model(torch.empty(2, 3, *clip))
    assert logits.shape == (2, 101)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("clip", [(32, 112, 112), (16, 112, 112), (8, 64, 64), (8, 32, 32)])
def test_width_16_output_shape_and_values(name, clip):
    torch.manual_seed(0)
    model = build_model(name, 7, width=16).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, *clip))
    assert logits.shape == (1, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_receives_a_gradient(name):
    torch.manual_seed(0)
    model = build_model(name, 5, width=8).train()
    loss = torch.nn.functional.cross_entropy(model(torch.rand(2, 3, 8, 32, 32)), torch.tensor([1, 3]))
    loss.backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert without == []


@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic(name):
    torch.manual_seed(0)
    model = build_model(name, 5, width=8).eval()
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_folding_batch_norms_keeps_the_function(name):
    torch.manual_seed(0)
    model = build_model(name, 5, width=8).double().eval()
    for module in model.modules():  # trained-looking statistics, not the identity of a fresh network
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 2), module.bias.data.uniform_(-1, 1)
    folded = fold_batch_norms(copy.deepcopy(model))
    norms = [sum(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules()) for net in (model, folded)]
    assert norms[1] < norms[0] or norms[0] == 0
    x = torch.rand(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(folded(x), expected, rtol=1e-9, atol=1e-9 * expected.abs().max().item())


@pytest.mark.parametrize("name", MODELS)
def test_the_training_layout_keeps_the_function_and_the_gradients(name):
    # in float64: a fresh network's float32 gradients differ from float64 by tens of % in either layout
    torch.manual_seed(0)
    model = build_model(name, 5, width=8).double()
    fast = to_training_layout(copy.deepcopy(model))
    if name in ("stts", "stts-a"):  # on a CPU their stem and first stage compute contiguous, the rest channels-last
        assert layout_of(fast.stem) == layout_of(fast.stages[0]) == torch.contiguous_format
        assert layout_of(fast.stages[1]) == layout_of(fast.stages[3]) == torch.channels_last_3d
    x = torch.rand(2, 3, 8, 32, 32, dtype=torch.float64)
    results = []
    for net, clip in ((model, x), (fast, x.contiguous(memory_format=torch.channels_last_3d))):
        torch.manual_seed(1)  # the same dropout
        loss = net(clip).square().sum()
        loss.backward()
        results.append((loss.detach(), [p.grad for p in net.parameters()]))
    (loss, grads), (fast_loss, fast_grads) = results
    torch.testing.assert_close(fast_loss, loss, rtol=1e-9, atol=0)
    for grad, fast_grad in zip(grads, fast_grads, strict=True):
        torch.testing.assert_close(fast_grad, grad, rtol=1e-7, atol=1e-9 * grad.abs().max().item())


def test_a_network_built_on_the_meta_device_costs_no_compiler_imports():
    # random initialisation of meta tensors goes through torch._refs and imports torch._dynamo (~76 MB)
    code = ("import sys, torch\nfrom stts.models import build_model\nwith torch.device('meta'):\n"
            "    model = build_model('stts-a', 5, width=8)\nassert all(p.is_meta for p in model.parameters())\n"
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 5, width=8).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.manual_seed(1)
    restored = build_model(name, 5, width=8).eval()
    restored.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))


def test_attention_gates_give_one_weight_per_position_in_unit_interval():
    torch.manual_seed(0)
    # train mode: batch statistics keep activations in range, as in training
    model = build_model("stts-a", 5, width=8).train()
    gates = [m for m in model.modules() if isinstance(m, GridAttentionGate)]
    # last three stages: 2 blocks x (conv1, conv2) + 1 shortcut = 5 STTS convs, 2 branches each
    assert len(gates) == 3 * 5 * 2
    seen = []

    def record(gate, inputs, output):
        l, g = inputs
        l = torch.nn.functional.interpolate(l, size=g.shape[2:], mode="trilinear") if l.shape[2:] != g.shape[2:] else l
        seen.append((gate.attention(l, g), g))

    for gate in gates:
        gate.register_forward_hook(record)
    with torch.no_grad():
        model(torch.rand(2, 3, 8, 32, 32))
    assert len(seen) == len(gates)
    for weights, g in seen:
        assert weights.shape == (g.shape[0], 1, *g.shape[2:])
        assert weights.min() >= 0 and weights.max() <= 1
        assert weights.std() > 0  # a gate that gives one constant weight would be no gate


def test_stts_without_attention_has_no_gates():
    assert not any(isinstance(m, GridAttentionGate) for m in build_model("stts", 5, width=8).modules())


needs_bf16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")


@needs_bf16  # without native bf16 (AVX2), oneDNN emulates it and STTS-A's gates drift 5.1 %: auto never picks it there
@pytest.mark.parametrize("name", MODELS)
def test_bf16_channels_last_agrees_with_fp32(name):
    torch.manual_seed(0)
    model = build_model(name, 10, width=16).eval()
    x = torch.rand(4, 3, 8, 64, 64)
    with torch.no_grad():
        reference = model(x)
        fast_model = model.to(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = fast_model(x.contiguous(memory_format=torch.channels_last_3d)).float()
    scale = reference.abs().max()
    assert (fast - reference).abs().max() <= 0.05 * scale
    # top-1 must agree wherever fp32's winner leads by more than bf16's error
    top2 = reference.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.1 * scale
    assert torch.equal(fast.argmax(1)[clear], reference.argmax(1)[clear])


@needs_bf16
@pytest.mark.parametrize("frames", [1, 2, 3])
def test_a_conv_on_fewer_frames_than_its_kernel_gets_true_bf16_gradients(frames):
    # torch 2.13's CPU bf16 weight gradient is garbage (often inf/NaN) for such inputs; the layer runs fp32 there
    torch.manual_seed(0)
    conv = Conv3d(16, 16, (3, 1, 1), padding=(1, 0, 0), bias=False).to(memory_format=torch.channels_last_3d)
    x = torch.randn(8, 16, frames, 4, 4).contiguous(memory_format=torch.channels_last_3d)
    grads = []
    for enabled in (False, True):
        conv.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            conv(x).float().square().sum().backward()
        grads.append(conv.weight.grad.clone())
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()) < 0.02


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("clip", [(16, 48), (16, 64), (32, 112)])
def test_a_bf16_training_step_has_finite_gradients_at_the_presets_sizes(name, clip):
    """The preset's input (RGB, temporal residual and normal flow: 8 channels, made from uint8 clips by its spec)
    through a bf16 training step. Where the CPU has no native bf16, oneDNN emulates it: the step still runs (what a
    forced --precision bf16 does there), at the preset's own size only, the larger ones taking minutes emulated."""
    from stts.clip import ClipSpec
    from stts.engine.presets import PRESETS

    frames, side = clip
    if not bf16_supported(torch.device("cpu")) and clip != (16, 48):
        pytest.skip("this CPU emulates bf16: only the preset's 16x48x48 is run")
    preset = PRESETS["small"]
    spec = ClipSpec(clip_len=frames, crop_size=side, normalisation=preset["normalisation"],
                    temporal_residual=preset["temporal_residual"], normal_flow=preset["normal_flow"])
    assert spec.network_channels == 8
    for seed in range(3):
        torch.manual_seed(seed)
        model = to_training_layout(build_model(name, 6, width=16, in_channels=spec.network_channels))
        clips = torch.randint(0, 256, (4, 3, frames, side, side), dtype=torch.uint8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(spec.model_input(clips)).float(), torch.arange(4))
        loss.backward()
        bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
        assert not bad, f"seed {seed}: non-finite gradients in {bad[:3]}"


def test_unknown_model_and_bad_width_are_refused():
    with pytest.raises(SttsError, match="unknown model 'resnet'.*stts-a"):
        build_model("resnet", 10)
    with pytest.raises(SttsError, match="width"):
        build_model("stts", 10, width=15)


def test_models_command_prints_the_seed_counts(capsys):
    assert main(["models", "--num-classes", "101", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["model"]: row for row in report["models"]}
    assert {name: rows[name]["parameters"] for name in rows} == {n: c for (n, k), c in SEED_COUNTS.items() if k == 101}
    expected_gflops = {"c3d": 154, "r2plus1d": 165, "stts": 166, "stts-a": 175}
    for name, gflops in expected_gflops.items():
        assert abs(rows[name]["gflops"] - gflops) < 1.5
