import numpy as np
import pandas as pd
import pytest
import torch

from apt_uss.models import load_backbone
from apt_uss.tuning import tune_prompts

SR = 32000


def _problem(epochs):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / SR
    clips = {"tone": (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32),
             "hiss": (0.3 * rng.standard_normal(16000)).astype(np.float32)}
    rows = []
    for e in range(epochs):
        rows.append(dict(epoch=e, target_file="tone", target=0, interferer_file="hiss", interferer=1,
                         target_offset=0, interferer_offset=0))
        rows.append(dict(epoch=e, target_file="hiss", target=1, interferer_file="tone", interferer=0,
                         target_offset=0, interferer_offset=0))
    return clips, pd.DataFrame(rows)


@pytest.fixture
def responsive_separator():
    """The tiny separator with its conditioning amplified, so prompts visibly steer the mask."""
    sep = load_backbone("tiny").separator
    with torch.no_grad():
        for name, module in sep.named_modules():
            if name.endswith(("emb1", "emb2")):
                module.weight.mul_(20)
        sep.after_conv2.weight.mul_(20)
    return sep


def test_only_the_prompts_change_and_the_loss_falls(responsive_separator):
    sep = responsive_separator
    before = {k: v.clone() for k, v in sep.state_dict().items()}
    clips, table = _problem(epochs=40)
    init = np.zeros((2, 16), np.float32)
    tuned, history = tune_prompts(sep, init, np.array([0, 1]), table, clips, "energy_match", 16000,
                                  lr=1e-2, batch_size=2)
    assert tuned.shape == init.shape and not np.allclose(tuned, init)
    after = sep.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert all(p.grad is None for p in sep.parameters())
    assert list(history["epoch"]) == list(range(40))
    assert history["loss"].iloc[-5:].mean() < 0.9 * history["loss"].iloc[0]


def test_tuning_is_deterministic(responsive_separator):
    clips, table = _problem(epochs=3)
    init = np.ones((2, 16), np.float32)
    a, _ = tune_prompts(responsive_separator, init, np.array([0, 1]), table, clips, "sum", 16000, lr=1e-2)
    b, _ = tune_prompts(responsive_separator, init, np.array([0, 1]), table, clips, "sum", 16000, lr=1e-2)
    np.testing.assert_array_equal(a, b)
