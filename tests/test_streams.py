"""Every random draw comes from its own stream (apt_uss/data/streams.py): no two purposes share one."""

import numpy as np
import pytest

from apt_uss.data import synthetic
from apt_uss.data.streams import PURPOSES, stream
from apt_uss.errors import AptUssError

# 7919 was the seen corpus's namespace word, which once made an evaluation class a pretraining one.
SEEDS = [*range(0, 25), 42, 1234, 7919, 7920, 2**31 - 1]


def _first_draws(generator: np.random.Generator) -> tuple:
    return tuple(generator.integers(0, 2**63, 4).tolist())


def test_numpy_pads_short_seed_lists_which_is_why_streams_use_spawn_keys():
    """The trap the streams avoid: lists differing only by trailing zeros are one stream."""
    assert _first_draws(np.random.default_rng([5, 1])) == _first_draws(np.random.default_rng([5, 1, 0]))
    assert _first_draws(stream("shots", 5, 1)) != _first_draws(stream("dataset_class", 5, 1))


def test_no_two_purposes_or_keys_share_a_stream_over_many_seeds():
    keys = range(0, 4)
    seen: dict[tuple, tuple] = {}
    for seed in SEEDS:
        for purpose, (_, n_keys) in PURPOSES.items():
            combos = [()] if n_keys == 0 else [(k,) for k in keys] if n_keys == 1 else [(a, b) for a in keys
                                                                                        for b in keys]
            for combo in combos:
                draws = _first_draws(stream(purpose, seed, *combo))
                assert draws not in seen, f"{(purpose, seed, combo)} repeats {seen[draws]}"
                seen[draws] = (purpose, seed, combo)
    # and none is the stream of a padded seed list, the derivation that once aliased (numpy's default_rng([...]))
    for seed in (0, 1, 7919):
        for c in range(4):
            for k in range(3):
                assert _first_draws(np.random.default_rng([seed, c, k])) not in seen


def test_the_dataset_class_recipes_depend_on_seed_and_class_only():
    assert synthetic.class_recipe(3, 2) == synthetic.class_recipe(3, 2)
    assert synthetic.class_recipe(3, 2) != synthetic.class_recipe(4, 2) != synthetic.class_recipe(3, 1)


@pytest.mark.parametrize("purpose, keys, message", [
    ("shot", (1,), "random stream 'shot' is unknown"),
    ("shots", (), "random stream 'shots' takes 1 key(s), got 0"),
    ("shots", (-1,), "seed and keys are integers from 0 up"),
])
def test_a_wrong_stream_request_is_an_error(purpose, keys, message):
    with pytest.raises(AptUssError) as err:
        stream(purpose, 0, *keys)
    assert message in str(err.value)


def test_the_shot_draw_and_the_mixtures_can_vary_apart_from_the_dataset(tmp_path):
    """shot_seed and mix_seed (-1: seed) change their draws and nothing else."""
    import pandas as pd

    from apt_uss.steps import data as data_steps

    data_steps.fetch_dataset_step("synthetic", str(tmp_path / "ds"), n_classes=3, seed=0)
    tables = {}
    for name, shot_seed in (("same", -1), ("zero", 0), ("other", 5)):
        tables[name] = data_steps.split_folds_step(str(tmp_path / "ds"), str(tmp_path / f"{name}.csv"), n_shot="2",
                                                   seed=0, shot_seed=shot_seed)
    assert tables["same"].equals(tables["zero"])
    train = {k: set(t.loc[t["split"] == "train", "filename"]) for k, t in tables.items()}
    assert train["other"] != train["same"]
    assert tables["other"][tables["other"]["split"] == "test"].reset_index(drop=True).equals(
        tables["same"][tables["same"]["split"] == "test"].reset_index(drop=True))
    mixes = {}
    for name, mix_seed in (("same", -1), ("other", 5)):
        data_steps.simulate_mixtures_step(str(tmp_path / "ds"), str(tmp_path / "same.csv"),
                                          str(tmp_path / f"mix-{name}"), seed=0, epochs=1, crop_seconds=1.0,
                                          mix_seed=mix_seed)
        mixes[name] = pd.read_csv(tmp_path / f"mix-{name}" / "test_mixtures.csv")
    assert set(mixes["same"]["target_file"]) == set(mixes["other"]["target_file"])
    assert not mixes["same"]["interferer_file"].equals(mixes["other"]["interferer_file"])


def test_a_new_backbone_is_initialised_from_its_own_stream_not_from_the_raw_seed():
    """The backbone's torch generator is seeded from the ``backbone_init`` stream: a seed of its own per master seed,
    never the master seed itself (which other purposes key their streams with), and the global RNG is left alone."""
    import torch

    from apt_uss.data.streams import torch_seed
    from apt_uss.models.backbone import Backbone, seeded_backbone
    from apt_uss.models.config import get_config

    seeds = {s: torch_seed("backbone_init", s) for s in SEEDS}
    assert len(set(seeds.values())) == len(SEEDS)
    assert all(0 <= v < 2**63 and v != s for s, v in seeds.items())
    cfg = get_config("tiny")
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    model = seeded_backbone(cfg, 7919)
    assert torch.equal(torch.rand(1), expected_next)  # the caller's generator did not move
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[7919])
        reference = Backbone(cfg)
        torch.manual_seed(7919)
        raw = Backbone(cfg)
    state, same, other = model.state_dict(), reference.state_dict(), raw.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not all(torch.equal(state[k], other[k]) for k in state)
