import numpy as np
import pandas as pd
import pytest
import torch

from apt_uss.method.tuning import tune_prompts
from apt_uss.models.backbone import Backbone
from apt_uss.models.config import get_config

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
    """The tiny separator with its conditioning amplified, so prompts visibly steer the mask.

    Random tiny separators differ in how much a prompt moves their mask (some are saturated at these
    prompts, so no gradient reaches them); this one, torch's generator at 0, is known to respond. It is
    built directly, not through ``load_backbone``'s ``backbone_init`` stream, so it stays this one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sep = Backbone(get_config("tiny")).freeze().separator
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


class Interrupted(Exception):
    pass


def _crash_after(epochs_done):
    def on_epoch(epoch, loss):
        if epoch + 1 == epochs_done:
            raise Interrupted  # the task dies right after its state for this epoch was saved
    return on_epoch


def test_a_restarted_tuning_resumes_and_ends_with_the_same_prompts(responsive_separator, tmp_path):
    from apt_uss.method.tuning_state import EpochState, fingerprint

    clips, table = _problem(epochs=5)
    init = np.full((2, 16), 0.5, np.float32)
    args = (init, np.array([0, 1]), table, clips, "energy_match", 16000)
    whole, whole_history = tune_prompts(responsive_separator, *args, lr=1e-2, batch_size=1)

    state = EpochState(str(tmp_path / "state"), fingerprint(init, table, {"lr": 1e-2}))
    with pytest.raises(Interrupted):
        tune_prompts(responsive_separator, *args, lr=1e-2, batch_size=1, state=state, on_epoch=_crash_after(3))
    seen = []
    resumed, history = tune_prompts(responsive_separator, *args, lr=1e-2, batch_size=1, state=state,
                                    on_epoch=lambda e, loss: seen.append(e))
    assert seen == [3, 4]  # only the epochs the first attempt did not finish
    np.testing.assert_array_equal(resumed, whole)
    pd.testing.assert_frame_equal(history, whole_history)


def test_state_from_other_inputs_is_not_resumed(responsive_separator, tmp_path):
    from apt_uss.method.tuning_state import EpochState, fingerprint

    clips, table = _problem(epochs=2)
    init = np.zeros((2, 16), np.float32)
    args = (np.array([0, 1]), table, clips, "sum", 16000)
    tune_prompts(responsive_separator, init, *args, lr=1e-2, state=EpochState(str(tmp_path), fingerprint(init, table, {})))
    other = init + 1
    seen = []
    tune_prompts(responsive_separator, other, *args, lr=1e-2,
                 state=EpochState(str(tmp_path), fingerprint(other, table, {})), on_epoch=lambda e, loss: seen.append(e))
    assert seen == [0, 1]


def test_joint_tuning_changes_the_separator_too(responsive_separator):
    clips, table = _problem(epochs=2)
    before = {k: v.clone() for k, v in responsive_separator.state_dict().items()}
    tune_prompts(responsive_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips, "sum", 16000,
                 lr=1e-3, mode="joint")
    after = responsive_separator.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.endswith("conv1.weight") for k in changed)
    assert not any("running_" in k for k in changed)  # BatchNorm statistics stay frozen
    assert not any(p.requires_grad for p in responsive_separator.parameters())


def test_bf16_autocast_tracks_fp32(responsive_separator):
    clips, table = _problem(epochs=3)
    init = np.zeros((2, 16), np.float32)
    args = (np.array([0, 1]), table, clips, "sum", 16000)
    a, ha = tune_prompts(responsive_separator, init, *args, lr=1e-2)
    b, hb = tune_prompts(responsive_separator, init, *args, lr=1e-2, precision="bf16")
    assert not np.array_equal(a, b)  # autocast did take effect
    # bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2% an operation); through the U-Net the
    # loss moves by about 1% (kernel-dependent: AVX-512-BF16 and AVX2 round differently), so 5% is the
    # bound for "tracks", and a wrong autocast (fp16 overflow, a cast dropping the prompts) is far off.
    np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=0.05)
    assert np.abs(b - a).max() < 0.2 * np.abs(a - init).max()  # same direction, up to bf16 noise


def test_bad_tuning_options_name_the_value(responsive_separator):
    from apt_uss.errors import AptUssError

    clips, table = _problem(epochs=1)
    for kwargs, word in (({"mode": "all"}, "tune='all'"), ({"precision": "fp16"}, "precision='fp16'")):
        with pytest.raises(AptUssError, match=word):
            tune_prompts(responsive_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                         "sum", 16000, **kwargs)


def test_cosine_schedule_decays_from_lr_to_zero_and_constant_keeps_lr():
    from apt_uss.method.tuning import scheduled_lr

    rates = [scheduled_lr(1e-2, "cosine", s, 100) for s in range(100)]
    assert rates[0] == pytest.approx(1e-2) and rates[50] == pytest.approx(5e-3) and 0 < rates[-1] < 1e-5
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert {scheduled_lr(1e-2, "constant", s, 100) for s in (0, 50, 99)} == {1e-2}


def _tune_whole_and_resumed(separator, tmp_path, **option):
    """(default-settings prompts, prompts with ``option``, the same after a crash at epoch 2 and a resume, init)."""
    from apt_uss.method.tuning_state import EpochState, fingerprint

    clips, table = _problem(epochs=4)
    init = np.full((2, 16), 0.5, np.float32)
    args = (init, np.array([0, 1]), table, clips, "energy_match", 16000)
    default, _ = tune_prompts(separator, *args, lr=1e-2, batch_size=1)
    whole, _ = tune_prompts(separator, *args, lr=1e-2, batch_size=1, **option)
    state = EpochState(str(tmp_path / "state"), fingerprint(init, table, option))
    with pytest.raises(Interrupted):
        tune_prompts(separator, *args, lr=1e-2, batch_size=1, state=state, on_epoch=_crash_after(2), **option)
    resumed, _ = tune_prompts(separator, *args, lr=1e-2, batch_size=1, state=state, **option)
    return default, whole, resumed, init


def test_cosine_tuning_differs_from_constant_and_resumes_on_the_same_curve(responsive_separator, tmp_path):
    constant, whole, resumed, init = _tune_whole_and_resumed(responsive_separator, tmp_path, lr_schedule="cosine")
    assert not np.allclose(whole, constant)
    # A smaller total step: the later updates were damped.
    assert np.abs(whole - init).sum() < np.abs(constant - init).sum()
    np.testing.assert_array_equal(resumed, whole)


def test_snr_tuning_differs_from_l1_and_resumes_to_the_same_prompts(responsive_separator, tmp_path):
    l1, whole, resumed, _ = _tune_whole_and_resumed(responsive_separator, tmp_path, loss_function="snr")
    assert not np.allclose(whole, l1)
    np.testing.assert_array_equal(resumed, whole)


def test_an_unknown_lr_schedule_is_refused_by_name(responsive_separator):
    from apt_uss.errors import AptUssError

    clips, table = _problem(epochs=1)
    with pytest.raises(AptUssError, match="lr_schedule='linear' is unknown: allowed are constant, cosine"):
        tune_prompts(responsive_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                     "sum", 16000, lr_schedule="linear")


def test_an_unknown_loss_function_is_refused_before_tuning(responsive_separator):
    from apt_uss.errors import AptUssError

    clips, table = _problem(epochs=1)
    with pytest.raises(AptUssError, match="loss_function='l2' is unknown: allowed are l1, snr"):
        tune_prompts(responsive_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                     "sum", 16000, loss_function="l2")


def test_embedding_several_clips_a_batch_gives_each_clip_the_embedding_it_gets_alone():
    # The CUDA path batches segments across clips; on CPU the same code runs when asked, and a clip's
    # embedding must not depend on which clips share its batch (eval-mode SED: float rounding only).
    from apt_uss.method.prompts import embed_clips
    from apt_uss.models.backbone import load_backbone

    sed = load_backbone("tiny").sed.eval()
    sr = 32000
    rng = np.random.default_rng(0)
    clips = [(f"c{i}.wav", (0.3 * rng.standard_normal(int(sr * s))).astype(np.float32))
             for i, s in enumerate([5.0, 2.5, 7.0, 1.0, 4.0])]
    alone = embed_clips(sed, iter(clips), len(clips), sr)
    for per_batch in (1, 3, 5, 64):
        together = embed_clips(sed, iter(clips), len(clips), sr, segments_per_batch=per_batch)
        assert list(together) == [name for name, _ in clips]
        for name, _ in clips:
            np.testing.assert_allclose(together[name], alone[name], rtol=0, atol=1e-5 * np.abs(alone[name]).max())
    with pytest.raises(Exception, match="segments_per_batch"):
        embed_clips(sed, iter(clips), len(clips), sr, segments_per_batch=-1)


def test_a_clip_without_a_loud_segment_gives_its_loudest_window():
    from apt_uss.method.prompts import clip_segments

    segment = 64000
    quiet = np.zeros(5 * 32000, np.float32)
    quiet[134400:153600] = 0.001  # 0.6 s of sound at 4.2 s, under the loudness threshold, in the tail no piece holds
    (window,) = clip_segments(quiet, segment)
    assert np.sum(window.astype(np.float64) ** 2) == pytest.approx(np.sum(quiet.astype(np.float64) ** 2))
    loud = quiet.copy()
    loud[:segment] = 0.1  # a loud first piece: the pieces above the threshold, as before
    np.testing.assert_array_equal(clip_segments(loud, segment), loud[None, :segment])
    short = np.full(1000, 0.5, np.float32)
    np.testing.assert_array_equal(clip_segments(short, segment)[0, :1000], short)
    assert clip_segments(short, segment).shape == (1, segment)
