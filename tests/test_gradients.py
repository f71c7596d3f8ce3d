"""per_sample_grad_norms: exact against a per-sample autograd loop, on every route."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinyMLP
from torch import nn

import skprune
from skprune.gradients import (
    NormRule,
    _autotune,
    _routes,
    grad_norm_routes,
    per_sample_grad_norms,
    register_norm_rule,
)
from skprune.gradients._autotune import ROUTE_NAMES, Route, route_policy, run_route
from skprune.gradients._conv import (
    GRADIENT_ROUTES,
    conv_route_costs,
    conv_weight_grads,
    conv_weight_sq_norms,
)
from skprune.gradients._norms import _grad_norms_of_batches, _per_sample_loss
from skprune.gradients._registry import rule_for


def reference_norms(module, X, y, criterion=None, parameters=None):
    """Per-sample gradient norms from one autograd backward pass per sample."""
    _, loss = _per_sample_loss(criterion)
    training = module.training
    module.eval()
    params = list(parameters) if parameters is not None else [
        p for p in module.parameters() if p.requires_grad
    ]
    norms = []
    for i in range(len(y)):
        sample_loss = loss(module(X[i:i + 1]), y[i:i + 1]).sum()
        grads = torch.autograd.grad(sample_loss, params, allow_unused=True)
        norms.append(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None)).item())
    module.train(training)
    return np.array(norms)


class ResidualBlockNet(nn.Module):
    """A ResNet basic block: in-place ReLUs, an in-place residual add, batch norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(4, 4, 3, padding="same", bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect", bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.relu(self.stem(x))
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.head(self.relu(out).mean((2, 3)))


class NormSequenceNet(nn.Module):
    """Grouped, strided Conv1d, GroupNorm, LayerNorm and a Linear over a sequence."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, stride=2, padding=1, groups=3)
        self.group_norm = nn.GroupNorm(2, 6)
        self.layer_norm = nn.LayerNorm(6)
        self.proj = nn.Linear(6, 5)
        self.out = nn.Linear(5, 4)

    def forward(self, x):
        h = F.relu(self.group_norm(self.conv(x)))
        h = self.layer_norm(h.transpose(1, 2))
        return self.out(torch.tanh(self.proj(h)).mean(1))


class EmbeddingNet(nn.Module):
    """Token embeddings (with padding and frequency scaling), optionally tied to the output."""

    def __init__(self, tie=False):
        super().__init__()
        self.embedding = nn.Embedding(12, 6, padding_idx=0)
        self.scaled = nn.Embedding(12, 3, scale_grad_by_freq=True)
        self.proj = nn.Linear(9, 6)
        self.out = nn.Linear(6, 12)
        if tie:
            self.out.weight = self.embedding.weight

    def forward(self, x):
        h = torch.cat([self.embedding(x), self.scaled(x)], -1)
        return self.out(torch.tanh(self.proj(h)).mean(1))


class Scale(nn.Module):
    """A layer no rule knows: only the general route handles it."""

    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(width))

    def forward(self, x):
        return x * self.scale


class GeneralRouteNet(nn.Module):
    """Layers without rules, and attention (whose out_proj is never called as a module)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 8)
        self.scale = Scale(8)
        self.prelu = nn.PReLU(8)
        self.attention = nn.MultiheadAttention(4, 2, batch_first=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = self.prelu(self.scale(self.fc(x)))
        sequence = h.view(-1, 2, 4)
        attended, _ = self.attention(sequence, sequence, sequence)
        return self.out(attended.reshape(-1, 8) + h)


class BatchMixingNet(nn.Module):
    """Adds the batch's mean logits: samples interact, so every layer is on the general route."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        logits = self.out(torch.tanh(self.fc(x)))
        return logits + 0.5 * logits.mean(0, keepdim=True)


class CalledTwiceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        return self.out(self.fc(torch.tanh(self.fc(x))))


class DirectUseNet(nn.Module):
    """Reads a layer's weight directly in its own forward, besides calling the layer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.out(h + F.linear(h, self.fc.weight))


class SequenceFirstNet(nn.Module):
    """Applies a Linear to a (T, n, d) layout, where dimension 0 is not the sample."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(x.transpose(0, 1))).mean(0))


class DataDependentScale(nn.Module):
    """Python control flow on each sample's values: vmap cannot trace it, a loop can."""

    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(width))

    def forward(self, x):
        return torch.stack([
            row * self.scale if float(row.detach().sum()) > 0 else row * self.scale.pow(2)
            for row in x
        ])


def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4)), (6,), 4


def cnn_with_batch_norm():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, stride=2, groups=2, dilation=1), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3),
    ), (3, 7, 7), 3


def wide_cnn():
    # Large spatial size, few channels: the weight gradients are formed per sample.
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=2, dilation=2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3),
    ), (1, 12, 12), 3


def conv1d_padding_modes():
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv1d(4, 4, 4, padding="same", padding_mode="replicate"), nn.Flatten(),
        nn.Linear(4 * 8, 3),
    ), (2, 8), 3


def conv3d():
    return nn.Sequential(
        nn.Conv3d(2, 3, 3, stride=(1, 2, 2), padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(3 * 4 * 2 * 2, 3),
    ), (2, 4, 4, 4), 3


def data_dependent():
    return nn.Sequential(nn.Linear(4, 5), DataDependentScale(5), nn.Linear(5, 3)), (4,), 3


MODELS = {
    "mlp": mlp,
    "cnn_batch_norm": cnn_with_batch_norm,
    "residual_block": lambda: (ResidualBlockNet(), (2, 6, 6), 3),
    "layer_group_norm": lambda: (NormSequenceNet(), (3, 9), 4),
    "embedding": lambda: (EmbeddingNet(), "tokens", 12),
    "general_route_only_layer": lambda: (GeneralRouteNet(), (5,), 3),
    "wide_cnn": wide_cnn,
    "conv1d_padding_modes": conv1d_padding_modes,
    "conv3d": conv3d,
    "tied_weights": lambda: (EmbeddingNet(tie=True), "tokens", 12),
    "layer_called_twice": lambda: (CalledTwiceNet(), (5,), 3),
    "weight_read_directly": lambda: (DirectUseNet(), (5,), 3),
    "sequence_first": lambda: (SequenceFirstNet(), (9, 4), 3),
    "batch_mixing": lambda: (BatchMixingNet(), (5,), 3),
    "no_vmap_rule": data_dependent,
}


def randomize_norm_layers(module):
    # Non-trivial running statistics and affine parameters, so that a wrong
    # normalization cannot go unnoticed.
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.running_mean.normal_()
            layer.running_var.uniform_(0.5, 2.0)
        if isinstance(layer, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
            nn.init.normal_(layer.weight)
            nn.init.normal_(layer.bias)


def make_case(name, n_samples=20, seed=0):
    torch.manual_seed(seed)
    module, input_shape, n_classes = MODELS[name]()
    module = module.double()
    randomize_norm_layers(module)
    if input_shape == "tokens":
        X = torch.randint(0, 12, (n_samples, 7))
    else:
        X = torch.randn(n_samples, *input_shape, dtype=torch.float64)
    y = torch.randint(0, n_classes, (n_samples,))
    return module, X, y


@pytest.mark.parametrize("batch_size", [9, 6])
@pytest.mark.parametrize("name", MODELS)
def test_matches_per_sample_autograd(name, batch_size):
    module, X, y = make_case(name)
    # Neither divides 20: a short last batch too. A first batch of 6 is
    # checked on its own graph, one of 9 by a separate pass on 4 samples.
    norms = per_sample_grad_norms(module, X, y, batch_size=batch_size)
    expected = reference_norms(module, X, y)
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


def test_float32_within_tolerance():
    module, X, y = make_case("residual_block")
    expected = reference_norms(module, X, y)
    norms = per_sample_grad_norms(module.float(), X.float(), y)
    assert np.max(np.abs(norms - expected) / expected) < 1e-4


def test_batch_norm_float32_exact_when_the_mean_dwarfs_the_spread():
    # Inputs far from zero go straight into batch norm: the input minus the
    # running mean is exact, but the mean times a sum over positions would
    # cancel out most of float32's digits.
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.BatchNorm2d(2), nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    )
    module[0].running_mean.fill_(1000.0)
    module[0].running_var.fill_(0.25)
    nn.init.normal_(module[0].weight)
    X = 1000.0 + 0.5 * torch.randn(10, 2, 6, 6)
    y = torch.randint(0, 3, (10,))
    expected = reference_norms(module.double(), X.double(), y)
    norms = per_sample_grad_norms(module.float(), X, y)
    assert np.max(np.abs(norms - expected) / expected) < 1e-4


def test_probabilities_module_with_nll():
    torch.manual_seed(0)
    logits = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    probabilities = nn.Sequential(logits, nn.Softmax(dim=1))
    X, y = torch.randn(12, 5, dtype=torch.float64), torch.randint(0, 3, (12,))
    for criterion in ("nll", nn.NLLLoss, nn.NLLLoss()):
        norms = per_sample_grad_norms(probabilities, X, y, criterion=criterion)
        np.testing.assert_allclose(norms, reference_norms(probabilities, X, y, "nll"), rtol=1e-10)
    # -log(softmax) is the cross-entropy of the logits (up to skorch's eps).
    np.testing.assert_allclose(
        per_sample_grad_norms(probabilities, X, y, criterion="nll"),
        per_sample_grad_norms(logits, X, y), rtol=1e-6,
    )


def test_criterion_instance_settings_are_kept():
    module, X, y = make_case("mlp")
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1, weight=torch.rand(4).double())
    np.testing.assert_allclose(
        per_sample_grad_norms(module, X, y, criterion=criterion),
        reference_norms(module, X, y, criterion), rtol=1e-10,
    )


def test_probabilities_given_as_logits_warn():
    module = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="like probabilities"):
        per_sample_grad_norms(module, torch.randn(6, 4), torch.zeros(6, dtype=torch.long))


def test_logits_given_as_probabilities_raise():
    module = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="outputs probabilities.*criterion='cross_entropy'"):
        per_sample_grad_norms(module, torch.randn(6, 4) * 10, np.zeros(6, int), criterion="nll")


def test_restricted_parameters_give_last_layer_closed_form():
    module, X, y = make_case("mlp")
    last = module[3]
    norms = per_sample_grad_norms(module, X, y, parameters=last.parameters())
    module.eval()
    hidden = module[:3](X)
    error = F.softmax(last(hidden), 1) - F.one_hot(y, 4)
    closed_form = error.norm(dim=1) * torch.sqrt(hidden.pow(2).sum(1) + 1)
    np.testing.assert_allclose(norms, closed_form.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        norms, reference_norms(module, X, y, parameters=last.parameters()), rtol=1e-10
    )


def test_frozen_parameters_are_left_out():
    module, X, y = make_case("cnn_batch_norm")
    module[0].weight.requires_grad_(False)
    np.testing.assert_allclose(
        per_sample_grad_norms(module, X, y), reference_norms(module, X, y), rtol=1e-10
    )


def test_module_state_is_restored_and_grads_untouched():
    module, X, y = make_case("residual_block")
    module.train()
    module.bn1.eval()
    per_sample_grad_norms(module, X, y)
    assert module.training and module.conv1.training and not module.bn1.training
    assert all(p.grad is None for p in module.parameters())
    assert all(not layer._forward_hooks for layer in module.modules())


def test_layout_check_runs_on_one_thread_and_restores_the_count():
    module, X, y = make_case("cnn_batch_norm")
    threads = torch.get_num_threads()
    seen = []

    def record(layer, args, output):
        seen.append((args[0].shape[0], torch.get_num_threads()))

    hook = module[0].register_forward_hook(record)
    torch.set_num_threads(2)
    try:
        per_sample_grad_norms(module, X, y, batch_size=10)
        assert torch.get_num_threads() == 2
        assert (4, 1) in seen and (10, 2) in seen  # the check's 4 samples, then batches
        with pytest.raises(ValueError, match="Labels must index"):
            per_sample_grad_norms(module, X, y + 10)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
        hook.remove()


def test_eval_mode_uses_running_statistics():
    module, X, y = make_case("cnn_batch_norm")
    running_mean = module[1].running_mean.clone()
    module.train()
    per_sample_grad_norms(module, X, y)
    torch.testing.assert_close(module[1].running_mean, running_mean)


def test_lazy_module_numpy_inputs_and_device():
    torch.manual_seed(0)
    module = TinyMLP(n_classes=3)
    X = np.random.RandomState(0).normal(size=(10, 2, 4))  # float64, cast to float32
    y = np.arange(10) % 3
    norms = per_sample_grad_norms(module, X, y, device="cpu")
    assert norms.dtype == np.float64 and norms.shape == (10,)
    expected = reference_norms(module, torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    np.testing.assert_allclose(norms, expected, rtol=1e-4)


def test_dict_inputs_are_keyword_arguments():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, left, right):
            return self.a(left) + self.b(right)

    torch.manual_seed(0)
    module = TwoInputs().double()
    left, right = torch.randn(8, 3).double(), torch.randn(8, 4).double()
    y = torch.randint(0, 2, (8,))
    norms = _grad_norms_of_batches(module, [({"left": left, "right": right}, y)])
    module.eval()
    expected = []
    for i in range(8):
        loss = F.cross_entropy(module(left[i:i + 1], right[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss, list(module.parameters()))
        expected.append(torch.sqrt(sum(g.pow(2).sum() for g in grads)).item())
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


@pytest.mark.parametrize(
    "module, X, y, match",
    [
        (nn.Linear(4, 3), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0]), "Labels must index"),
        (nn.Linear(4, 3), torch.randn(5, 4), torch.tensor([0, 1, -1, 2, 0]), "Labels must index"),
        (nn.Conv1d(4, 3, 1), torch.randn(5, 4, 2), torch.zeros(5, dtype=torch.long),
         r"shape \(n_samples, n_classes\)"),
        (nn.Sequential(nn.Linear(4, 3), nn.Flatten(0)), torch.randn(5, 4),
         torch.zeros(5, dtype=torch.long), r"shape \(n_samples, n_classes\)"),
        (nn.Sequential(nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 3)),
         torch.randn(5, 4), torch.zeros(5, dtype=torch.long), "running statistics"),
        (nn.Linear(4, 3), torch.full((5, 4), float("nan")), torch.zeros(5, dtype=torch.long),
         "NaN or infinite"),
        (nn.Linear(4, 3), torch.randn(5, 4), torch.zeros(4, dtype=torch.long), "different lengths"),
        (nn.Linear(4, 3), torch.randn(5, 4), torch.full((5,), 0.5), "integer class indices"),
    ],
)
def test_bad_input_raises_clear_error(module, X, y, match):
    with pytest.raises(ValueError, match=match):
        per_sample_grad_norms(module, X, y)


def test_bad_criterion_and_parameters_raise():
    module, X, y = make_case("mlp")
    with pytest.raises(ValueError, match="criterion must be"):
        per_sample_grad_norms(module, X, y, criterion=nn.MSELoss())
    with pytest.raises(ValueError, match="parameters must be parameters of module"):
        per_sample_grad_norms(module, X, y, parameters=[nn.Parameter(torch.zeros(2))])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        per_sample_grad_norms(lambda x: x, X, y)


def test_works_under_no_grad_and_for_tiny_inputs():
    module, X, y = make_case("residual_block")
    expected = reference_norms(module, X, y)
    with torch.no_grad():
        np.testing.assert_allclose(per_sample_grad_norms(module, X, y), expected, rtol=1e-10)
    np.testing.assert_allclose(per_sample_grad_norms(module, X[:1], y[:1]), expected[:1])
    assert per_sample_grad_norms(module, X[:0], y[:0]).shape == (0,)


# Convolution routes --------------------------------------------------------------

#: (convolution, input shape without the batch): strides, padding modes,
#: dilation, kernels 1 and 5, groups, depthwise, 1-D, 3-D, a single position.
CONVOLUTIONS = {
    "k3_padding": (lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 7, 7)),
    "stride2_even_map": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 8, 8)),
    "k1": (lambda: nn.Conv2d(3, 5, 1), (3, 6, 6)),
    "k5_padding2": (lambda: nn.Conv2d(2, 3, 5, padding=2), (2, 7, 7)),
    "dilation2": (lambda: nn.Conv2d(2, 3, 3, padding=2, dilation=2), (2, 7, 7)),
    "dilation2_stride2": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=2), (2, 9, 9)),
    "depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (4, 6, 6)),
    "depthwise_x2_stride2": (lambda: nn.Conv2d(3, 6, 3, stride=2, groups=3), (3, 7, 7)),
    "groups2_k5": (lambda: nn.Conv2d(4, 6, 5, padding=1, groups=2), (4, 6, 6)),
    "rectangular": (
        lambda: nn.Conv2d(2, 3, (3, 1), stride=(2, 1), padding=(1, 0)), (2, 6, 5)
    ),
    "same_even_reflect": (
        lambda: nn.Conv2d(2, 3, 4, padding="same", padding_mode="reflect"), (2, 6, 6)
    ),
    "circular_stride2": (
        lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="circular"), (2, 7, 7)
    ),
    "one_position": (lambda: nn.Conv2d(3, 4, 3), (3, 3, 3)),
    # Many channels on a small map: the windows are gathered channels last.
    "channels_last_windows": (lambda: nn.Conv2d(8, 4, 3, padding=1), (8, 3, 3)),
    "channels_last_groups2": (lambda: nn.Conv2d(8, 4, 3, padding=1, groups=2), (8, 2, 2)),
    "channels_last_reflect": (
        lambda: nn.Conv2d(6, 3, 3, padding=1, padding_mode="reflect"), (6, 2, 3)
    ),
    "channels_last_1d": (lambda: nn.Conv1d(8, 3, 3, stride=2, padding=1), (8, 5)),
    "channels_last_one_call_of_two": (lambda: nn.Conv2d(8, 4, 3, padding=1), (8, 4, 4)),
    "1d_k5_stride2": (lambda: nn.Conv1d(3, 4, 5, stride=2, padding=2), (3, 11)),
    "1d_depthwise_dilation2": (
        lambda: nn.Conv1d(4, 4, 3, padding=2, dilation=2, groups=4), (4, 9)
    ),
    "1d_k1": (lambda: nn.Conv1d(3, 2, 1), (3, 5)),
    "3d": (lambda: nn.Conv3d(2, 3, 3, stride=(1, 2, 2), padding=1), (2, 4, 5, 5)),
}


def conv_calls(name, n_calls=1, n=5, dtype=torch.float64):
    """A convolution and its (input, output gradient) calls; a second call is one pixel larger."""
    torch.manual_seed(0)
    make_layer, shape = CONVOLUTIONS[name]
    layer = make_layer().to(dtype)
    calls = []
    for call in range(n_calls):
        x = torch.randn(n, shape[0], *(size + call for size in shape[1:]), dtype=dtype)
        with torch.no_grad():
            g = torch.randn_like(layer(x))
        calls.append((x, g))
    return layer, calls


def reference_weight_grads(layer, calls):
    """Per-sample weight gradients, by autograd one sample at a time."""
    grads = []
    for i in range(calls[0][0].shape[0]):
        grads.append(sum(
            torch.autograd.grad(layer(x[i:i + 1]), layer.weight, g[i:i + 1])[0]
            for x, g in calls
        ))
    return torch.stack(grads)


def applies(layer, calls, route):
    """Whether ``route`` is one of the convolution's exact routes for these calls."""
    return route in conv_route_costs(layer, calls)


def forced_conv_sq_norms(layer, calls, route):
    """The convolution's weight norms by ``route``, checking that it was the route taken."""
    log = {}
    with route_policy(route, log):
        norms = conv_weight_sq_norms(layer, calls)
    assert log[layer] == route
    return norms


@pytest.mark.parametrize("route", ROUTE_NAMES)
@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_every_conv_route_is_exact(name, route):
    layer, calls = conv_calls(name)
    if not applies(layer, calls, route):
        pytest.skip(f"{route!r} does not apply to {name}")
    expected = reference_weight_grads(layer, calls).flatten(1).pow(2).sum(1)
    torch.testing.assert_close(
        forced_conv_sq_norms(layer, calls, route), expected, rtol=1e-10, atol=0
    )


@pytest.mark.parametrize("route", ROUTE_NAMES)
@pytest.mark.parametrize("name", ["k3_padding", "depthwise_x2_stride2", "1d_k5_stride2",
                                  "channels_last_windows", "channels_last_one_call_of_two",
                                  "same_even_reflect", "1d_depthwise_dilation2"])
def test_conv_routes_add_up_the_calls_of_a_layer(name, route):
    # The second call is one pixel larger: for "channels_last_one_call_of_two",
    # too large for channels-last windows on its own.
    layer, calls = conv_calls(name, n_calls=2)
    if not applies(layer, calls, route):
        pytest.skip(f"{route!r} does not apply to {name}")
    expected = reference_weight_grads(layer, calls).flatten(1).pow(2).sum(1)
    torch.testing.assert_close(
        forced_conv_sq_norms(layer, calls, route), expected, rtol=1e-10, atol=0
    )


@pytest.mark.parametrize("route", [*GRADIENT_ROUTES, "auto"])
@pytest.mark.parametrize("name", ["stride2_even_map", "depthwise", "same_even_reflect", "3d",
                                  "channels_last_groups2", "channels_last_1d"])
def test_conv_routes_form_exact_per_sample_grads(name, route):
    layer, calls = conv_calls(name, n_calls=2)
    with route_policy(route):
        grads = conv_weight_grads(layer, calls)
    torch.testing.assert_close(
        grads, reference_weight_grads(layer, calls), rtol=1e-10, atol=1e-12,
    )


@pytest.mark.parametrize("route", ["gram", "shifted"])
def test_routes_that_only_give_norms_are_not_used_to_form_gradients(route):
    layer, calls = conv_calls("k3_padding")
    log = {}
    with route_policy(route, log):
        grads = conv_weight_grads(layer, calls)
    assert log[layer] in GRADIENT_ROUTES
    torch.testing.assert_close(grads, reference_weight_grads(layer, calls))


@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_conv_routes_float32_within_tolerance(route):
    torch.manual_seed(0)
    layer = nn.Conv2d(16, 32, 3, padding=1).double()
    x = torch.randn(6, 16, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        g = torch.randn_like(layer(x))
    expected = reference_weight_grads(layer, [(x, g)]).flatten(1).pow(2).sum(1)
    norms = forced_conv_sq_norms(layer.float(), [(x.float(), g.float())], route)
    assert norms.dtype == torch.float32
    assert float(((norms.double() - expected) / expected).abs().max()) < 1e-4


def test_memory_budget_splits_the_batch(monkeypatch):
    layer, calls = conv_calls("k5_padding2", n=7)
    whole = {route: forced_conv_sq_norms(layer, calls, route) for route in ROUTE_NAMES}
    monkeypatch.setattr(_routes, "MEMORY_BUDGET", 1)
    assert all(chunk == 1 for _, chunk in conv_route_costs(layer, calls).values())
    for route in ROUTE_NAMES:
        torch.testing.assert_close(forced_conv_sq_norms(layer, calls, route), whole[route])


def estimated(costs, ranked=ROUTE_NAMES):
    return min((route for route in costs if route in ranked), key=lambda route: costs[route][0])


def test_shape_model():
    # A deep layer on a small map (few positions, many channels): the Gram form.
    conv = {"gather": True}

    def costs(*args, **kwargs):
        # For ungrouped layers the model ranks only these two.
        costs = _routes.route_costs(*args, **kwargs)
        return costs if args[1] > 1 else {route: costs[route] for route in ("gram", "outer")}

    assert estimated(costs(128, 1, 512 * 9, 512, 4 * 4, input_size=512 * 4 * 4, **conv)) == "gram"
    # One position (e.g. a 1x1 map): the Gram form is the closed form |g|^2 |a|^2.
    assert estimated(costs(128, 1, 64 * 9, 64, 1, input_size=64 * 9, **conv)) == "gram"
    # An early layer on a large map (many positions, few channels): formed gradients.
    assert estimated(costs(128, 1, 9, 24, 28 * 28, input_size=28 * 28, **conv)) == "outer"
    # Depthwise on a large map: the grouped kernel, which gathers no windows...
    assert estimated(costs(128, 64, 9, 1, 32 * 32, input_size=64 * 32 * 32, **conv)) == "grouped"
    # ... unless there are no windows to gather (a 1x1 kernel).
    assert estimated(costs(128, 64, 1, 1, 32 * 32, input_size=64 * 32 * 32)) == "outer"
    # A linear layer over a sequence has no grouped route.
    assert set(_routes.route_costs(128, 1, 64, 64, 50)) == {"gram", "outer"}


def test_shape_model_of_recorded_calls():
    # Many channels on a small map: the Gram form; tiny layers: the fewest launches.
    ranked = ("gram", "outer")
    small_map = nn.Conv2d(256, 256, 3, padding=1)
    x = torch.randn(16, 256, 2, 2)
    costs = conv_route_costs(small_map, [(x, torch.zeros(16, 256, 2, 2))])
    assert estimated(costs, ranked) == "gram"
    tiny = nn.Conv2d(2, 3, 3)
    x = torch.randn(8, 2, 4, 4)
    assert estimated(conv_route_costs(tiny, [(x, tiny(x).detach())]), ranked) == "outer"
    # The shifted route needs stride 1, the pixel Gram route one call.
    strided = nn.Conv2d(3, 4, 3, stride=2)
    x = torch.randn(8, 3, 9, 9)
    call = (x, strided(x).detach())
    assert "shifted" not in conv_route_costs(strided, [call])
    assert "pixel_gram" in conv_route_costs(strided, [call])
    assert "pixel_gram" not in conv_route_costs(strided, [call, call])


def test_shape_model_ranks_the_routes_it_knows():
    # It does not rank the grouped kernel for ungrouped convolutions (a
    # batch-group convolution that oneDNN runs very slowly for some shapes)
    # nor the shifted route: those are taken when measured or forced.
    layer = nn.Conv2d(2, 3, 3)
    calls = [(torch.randn(4, 2, 6, 6), torch.randn(4, 3, 4, 4))]
    assert set(conv_route_costs(layer, calls)) == set(ROUTE_NAMES)
    log = {}
    with route_policy("estimate", log):
        conv_weight_sq_norms(layer, calls)
    assert log[layer] in ("gram", "outer")
    grouped = nn.Conv2d(4, 4, 3, groups=4)
    calls = [(torch.randn(4, 4, 16, 16), torch.randn(4, 4, 14, 14))]
    with route_policy("estimate", log):
        conv_weight_sq_norms(grouped, calls)
    assert log[grouped] == "grouped"


@pytest.mark.parametrize("name", ["cnn_batch_norm", "residual_block", "wide_cnn",
                                  "conv1d_padding_modes", "layer_group_norm", "conv3d",
                                  "layer_called_twice", "tied_weights"])
def test_autotuned_route_gives_the_norms_of_every_other_route(name):
    module, X, y = make_case(name)
    expected = reference_norms(module, X, y)
    results = {}
    for route in ("auto", "estimate", *ROUTE_NAMES):
        results[route] = per_sample_grad_norms(module, X, y, batch_size=9, route=route)
        np.testing.assert_allclose(results[route], expected, rtol=1e-10)
    for route in ROUTE_NAMES:
        np.testing.assert_allclose(results["auto"], results[route], rtol=1e-12)


def test_forced_route_is_taken_wherever_it_applies():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.Flatten(),
        nn.Linear(6 * 3 * 3, 3),
    )
    X, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    for route in ROUTE_NAMES:
        routes = grad_norm_routes(module, X, y, route=route)
        assert routes["0"] == route
        assert routes["4"] == "rule"
        # Stride 2: no shifted route; the shape model chooses.
        assert routes["2"] == (route if route != "shifted" else
                               grad_norm_routes(module, X, y, route="estimate")["2"])


def test_grad_norm_routes_names_rules_and_the_general_route():
    module, X, y = make_case("general_route_only_layer")
    routes = grad_norm_routes(module, X, y)
    assert routes["fc"] == routes["out"] == "rule"
    assert routes["scale"] == routes["prelu"] == routes["attention"] == "general"


# Route measurement ----------------------------------------------------------------


@pytest.fixture
def fresh_choices(monkeypatch):
    """An empty cache of measured choices, and a count of the timed runs."""
    monkeypatch.setattr(_autotune, "_CHOICES", {})
    timed = []
    time_route = _autotune._time_route

    def counting(route, device):
        timed.append(route.name)
        return time_route(route, device)

    monkeypatch.setattr(_autotune, "_time_route", counting)
    return timed


def test_measured_choice_is_kept_and_reused(fresh_choices):
    module, X, y = make_case("cnn_batch_norm")
    per_sample_grad_norms(module, X, y, batch_size=10)
    first = len(fresh_choices)
    assert first > 0
    keys = set(_autotune._CHOICES)
    # Same shapes again, in this call and the next: no more timing.
    per_sample_grad_norms(module, X, y, batch_size=10)
    assert len(fresh_choices) == first and set(_autotune._CHOICES) == keys
    # A new batch shape is measured once.
    per_sample_grad_norms(module, X[:7], y[:7], batch_size=7)
    assert len(fresh_choices) > first
    again = len(fresh_choices)
    per_sample_grad_norms(module, X[:7], y[:7], batch_size=7)
    assert len(fresh_choices) == again
    # Forcing a route, or the shape model, times nothing.
    per_sample_grad_norms(module, X[:5], y[:5], route="estimate")
    per_sample_grad_norms(module, X[:5], y[:5], route="outer")
    assert len(fresh_choices) == again


def test_measured_choice_depends_on_dtype(fresh_choices):
    layer, calls = conv_calls("k3_padding", dtype=torch.float64)
    conv_weight_sq_norms(layer, calls)
    n_keys = len(_autotune._CHOICES)
    conv_weight_sq_norms(layer.float(), [(x.float(), g.float()) for x, g in calls])
    assert len(_autotune._CHOICES) == n_keys + 1


def scripted(monkeypatch, times, warm_up=None):
    """Routes whose runs take the given seconds (untimed runs: ``warm_up``, else 1 ms)."""
    runs = []
    routes = [Route(name, 1.0, lambda name=name: runs.append(name) or torch.ones(1))
              for name in times]

    def run_once(route, device):
        return (warm_up or {}).get(route.name, 0.001), route.run()

    def time_route(route, device):
        route.run()
        left = times[route.name]
        return left.pop(0) if len(left) > 1 else left[0]  # the last one repeats

    monkeypatch.setattr(_autotune, "_run_once", run_once)
    monkeypatch.setattr(_autotune, "_time_route", time_route)
    monkeypatch.setattr(_autotune, "_CHOICES", {})
    return routes, runs


def test_measurement_keeps_the_fastest_run_of_each_route(monkeypatch):
    # "outer" has one noisy round; its fastest run still wins.
    rounds = _autotune.ROUNDS
    routes, runs = scripted(monkeypatch, {"gram": [0.010] * rounds,
                                          "outer": [0.030] + [0.004] * (rounds - 1)})
    log = {}
    with route_policy("auto", log):
        result = run_route("layer", ("key",), routes)
    assert log["layer"] == "outer" and _autotune._CHOICES[("key",)] == "outer"
    torch.testing.assert_close(result, torch.ones(1))
    # One untimed run of each, then every timed round; the result is reused.
    assert runs.count("gram") == runs.count("outer") == 1 + rounds


def test_measurement_drops_slow_routes_and_stops_on_its_budget(monkeypatch):
    routes, runs = scripted(monkeypatch, {"gram": [0.5], "outer": [0.001, 0.001],
                                          "grouped": [0.002, 0.002], "shifted": []},
                            warm_up={"shifted": 0.0101})
    monkeypatch.setattr(_autotune, "TIME_BUDGET", 0.504)
    with route_policy("auto"):
        run_route("layer", ("key",), routes)
    # "shifted" stopped after its untimed run (over 10 times the fastest),
    # "gram" after the first round; the second round spent the budget.
    assert runs.count("shifted") == 1
    assert runs.count("gram") == 2 and runs.count("outer") == runs.count("grouped") == 3
    assert _autotune._CHOICES[("key",)] == "outer"


def test_one_route_left_after_the_untimed_runs_is_not_timed(monkeypatch):
    routes, runs = scripted(monkeypatch, {"gram": [], "outer": []},
                            warm_up={"gram": 0.5})
    with route_policy("auto"):
        run_route("layer", ("key",), routes)
    assert runs == ["gram", "outer"] and _autotune._CHOICES[("key",)] == "outer"


def test_a_route_that_fails_is_left_out_of_the_measurement(monkeypatch):
    monkeypatch.setattr(_autotune, "_CHOICES", {})

    def unsupported():
        raise NotImplementedError("no such kernel here")

    routes = [Route("unsupported", 1.0, unsupported), Route("works", 1.0, lambda: torch.ones(1))]
    with route_policy("auto"):
        torch.testing.assert_close(run_route("layer", ("key",), routes), torch.ones(1))
    assert _autotune._CHOICES[("key",)] == "works"
    monkeypatch.setattr(_autotune, "_CHOICES", {})
    with route_policy("auto"), pytest.raises(NotImplementedError, match="no such kernel"):
        run_route("layer", ("key",), routes[:1] * 2)


def test_hopeless_routes_are_not_timed(monkeypatch):
    routes, runs = scripted(monkeypatch, {"fast": [0.002], "near": [0.001]})
    routes += [Route("hopeless", 1.0 + _autotune.HOPELESS, lambda: runs.append("hopeless")),
               Route("never", math.inf, lambda: runs.append("never"))]
    with route_policy("auto"):
        run_route("layer", ("key",), routes)
    assert set(runs) == {"fast", "near"} and _autotune._CHOICES[("key",)] == "near"


def test_estimate_takes_the_cheapest_ranked_route():
    runs = []
    routes = [Route("measured_only", 1.0, lambda: runs.append("measured_only"), ranked=False),
              Route("ranked", 2.0, lambda: runs.append("ranked"))]
    log = {}
    with route_policy("estimate", log):
        run_route("layer", ("key",), routes)
    assert runs == ["ranked"] and log["layer"] == "ranked"
    with route_policy("measured_only", log):
        run_route("layer", ("key",), routes)
    assert runs[-1] == "measured_only"


def test_unknown_route_raises():
    module, X, y = make_case("mlp")
    with pytest.raises(ValueError, match="route must be 'auto'"):
        per_sample_grad_norms(module, X, y, route="fastest")


# Norm rules for one's own layers --------------------------------------------------


class Gate(nn.Module):
    """A layer of this test file: ``x * sigmoid(gate)``, per feature."""

    def __init__(self, width):
        super().__init__()
        self.gate = nn.Parameter(torch.randn(width))

    def forward(self, x):
        return x * torch.sigmoid(self.gate)


def test_registered_rule_is_used_and_exact():
    class GateRule(NormRule):
        parameters = ("gate",)
        calls = 0

        def grads(self, layer, calls, names):
            GateRule.calls += 1
            s = torch.sigmoid(layer.gate)
            n = calls[0][0].shape[0]
            return {"gate": sum((x * g).reshape(n, -1, x.shape[-1]).sum(1) * s * (1 - s)
                                for x, g in calls)}

    class GateNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.gate, self.out = nn.Linear(4, 5), Gate(5), nn.Linear(5, 3)

        def forward(self, x):
            return self.out(self.gate(torch.tanh(self.gate(self.fc(x)))))  # called twice

    torch.manual_seed(0)
    module = GateNet().double()
    X, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    assert grad_norm_routes(module, X, y)["gate"] == "general"
    assert register_norm_rule(Gate)(GateRule) is GateRule
    try:
        assert isinstance(rule_for(module.gate), GateRule)
        assert grad_norm_routes(module, X, y)["gate"] == "rule"
        np.testing.assert_allclose(per_sample_grad_norms(module, X, y),
                                   reference_norms(module, X, y), rtol=1e-10)
        assert GateRule.calls >= 2
    finally:
        del skprune.gradients._registry._RULES[Gate]


def test_rule_needs_the_class_forward():
    class OwnForward(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    class SameForward(nn.Linear):
        pass

    assert rule_for(OwnForward(2, 2)) is None
    assert rule_for(SameForward(2, 2)) is rule_for(nn.Linear(2, 2))
    assert rule_for(nn.ReLU()) is None


def test_register_norm_rule_checks_its_arguments():
    with pytest.raises(TypeError, match="torch.nn.Module subclasses"):
        register_norm_rule("Linear")
    with pytest.raises(TypeError, match="torch.nn.Module subclasses"):
        register_norm_rule()
    with pytest.raises(TypeError, match="subclass of skprune.gradients.NormRule"):
        register_norm_rule(Gate)(lambda layer, calls, names: {})
    assert Gate not in skprune.gradients._registry._RULES


def test_public_names():
    assert skprune.per_sample_grad_norms is per_sample_grad_norms
    assert set(skprune.gradients.__all__) == {
        "NormRule", "grad_norm_routes", "per_sample_grad_norms", "register_norm_rule"}
