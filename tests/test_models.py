import pytest
import torch

from apt_uss.errors import AptUssError
from apt_uss.models.backbone import load_backbone


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny")


def test_shapes_and_frozen_state(tiny):
    wav = torch.randn(2, 20000)
    emb = tiny.sed(wav)["latent_output"]
    assert emb.shape == (2, tiny.cfg.embed_dim)
    out = tiny.separator(wav, emb)["wav"]
    assert out.shape == wav.shape
    assert not tiny.training and all(not p.requires_grad for p in tiny.parameters())


def test_condition_changes_the_separated_output(tiny):
    wav = torch.randn(1, 16000)
    a = tiny.separator(wav, torch.zeros(1, tiny.cfg.embed_dim))["wav"]
    b = tiny.separator(wav, torch.full((1, tiny.cfg.embed_dim), 5.0))["wav"]
    assert not torch.allclose(a, b)


def test_same_seed_gives_the_same_backbone_in_every_process():
    a, b = load_backbone("tiny", init_seed=3), load_backbone("tiny", init_seed=3)
    c = load_backbone("tiny", init_seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_checkpoints_load_plain_and_lightning_and_refuse_mismatches(tmp_path, tiny):
    plain, lightning = tmp_path / "sep.pt", tmp_path / "sep.ckpt"
    torch.save(tiny.separator.state_dict(), plain)
    torch.save({"state_dict": tiny.separator.state_dict(), "epoch": 3}, lightning)
    for uri in (str(plain), lightning.as_uri()):
        loaded = load_backbone("tiny", separator_checkpoint_uri=uri, init_seed=99)
        assert torch.equal(loaded.separator.after_conv2.weight, tiny.separator.after_conv2.weight)
    # the SED checkpoint in the separator slot: every key is wrong, and the error says which
    sed_ckpt = tmp_path / "sed.pt"
    torch.save(tiny.sed.state_dict(), sed_ckpt)
    with pytest.raises(AptUssError, match=r"separator checkpoint .* does not fit.*missing \[.*unexpected \["):
        load_backbone("tiny", separator_checkpoint_uri=str(sed_ckpt))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(plain.read_bytes()[:1000])
    with pytest.raises(AptUssError, match="not a readable PyTorch checkpoint"):
        load_backbone("tiny", separator_checkpoint_uri=str(truncated))
    with pytest.raises(AptUssError, match="does not exist"):
        load_backbone("tiny", sed_checkpoint_uri=str(tmp_path / "absent.pt"))


def test_unknown_backbone_lists_configs():
    with pytest.raises(AptUssError, match="backbone='huge'.*tiny, small"):
        load_backbone("huge")


def test_official_prefixes_and_the_embedded_sed_are_handled(tmp_path, tiny):
    sed = {f"sed_model.{k}": v for k, v in tiny.sed.state_dict().items()}
    torch.save({"state_dict": sed, "epoch": 1}, tmp_path / "htsat.ckpt")
    loaded = load_backbone("tiny", sed_checkpoint_uri=str(tmp_path / "htsat.ckpt"), init_seed=5)
    assert torch.equal(loaded.sed.patch_embed.proj.weight, tiny.sed.patch_embed.proj.weight)
    # a separator checkpoint that carries its SED under at_model.sed_model. gives both parts
    sep = dict(tiny.separator.state_dict())
    sep.update({f"at_model.sed_model.{k}": v for k, v in tiny.sed.state_dict().items()})
    torch.save({"state_dict": sep}, tmp_path / "asp.ckpt")
    both = load_backbone("tiny", separator_checkpoint_uri=str(tmp_path / "asp.ckpt"), init_seed=5)
    assert torch.equal(both.sed.patch_embed.proj.weight, tiny.sed.patch_embed.proj.weight)
    assert torch.equal(both.separator.after_conv2.weight, tiny.separator.after_conv2.weight)


def test_a_different_embedding_width_is_named(tmp_path, tiny):
    state = dict(tiny.separator.state_dict())
    state["encoder_block1.conv_block.emb1.weight"] = torch.zeros(4, 32)  # a 32-d condition instead of 16
    torch.save(state, tmp_path / "wide.pt")
    with pytest.raises(AptUssError, match=r"shape mismatch .*encoder_block1.conv_block.emb1.weight \(4, 32\) vs \(4, 16\)"):
        load_backbone("tiny", separator_checkpoint_uri=str(tmp_path / "wide.pt"))


def test_describe_counts_parts_and_prompt_fraction(tiny):
    from apt_uss.models.describe import describe

    d = describe("tiny")
    assert d["sed_learnable"] == sum(p.numel() for p in tiny.sed.parameters())
    assert d["separator_learnable"] == sum(p.numel() for p in tiny.separator.parameters())
    emb = sum(m.weight.numel() + m.bias.numel() for n, m in tiny.separator.named_modules() if n.endswith(("emb1", "emb2")))
    assert d["separator_conditioning"] == emb
    assert d["prompts_50_classes"] == 50 * 16
    assert d["prompts_4_classes_fraction_of_separator"] == pytest.approx(64 / d["separator_learnable"])


def test_paper_config_has_the_reference_parameter_counts():
    """Counts of the official 2048-d HTS-AT and ZS-ASP (reference code instantiated with torchlibrosa 0.1.0)."""
    from apt_uss.models.describe import describe

    d = describe("paper")
    assert d["embed_dim"] == 2048
    assert d["sed_learnable"] == 202_007_607 and d["sed_frozen_kernels"] == 1_083_456  # 203.09 M in all
    assert d["separator_learnable"] == 167_614_499 and d["separator_conditioning"] == 29_177_760
    assert d["separator_frozen_kernels"] == 12_589_056  # STFT/iSTFT kernels and the OLA window
    assert d["prompts_50_classes_fraction_of_separator"] == pytest.approx(102_400 / 167_614_499)


def test_small_configs_forward_on_cpu():
    model = load_backbone("small")
    wav = torch.randn(2, 64000) * 0.1
    with torch.inference_mode():
        emb = model.sed(wav)["latent_output"]
        out = model.separator(wav[..., None], emb)["wav"]  # the reference's (B, samples, 1) layout too
    assert emb.shape == (2, 128) and out.shape == (2, 64000, 1)


def test_checkpoint_checksum_in_the_uri_is_verified(tmp_path, tiny):
    from apt_uss.io.download import sha256_file

    path = tmp_path / "sep.pt"
    torch.save(tiny.separator.state_dict(), path)
    good = f"{path.as_uri()}#sha256={sha256_file(path)}"
    assert torch.equal(load_backbone("tiny", separator_checkpoint_uri=good).separator.after_conv2.weight,
                       tiny.separator.after_conv2.weight)
    with pytest.raises(AptUssError, match="checksum mismatch: expected sha256 " + "0" * 64):
        load_backbone("tiny", separator_checkpoint_uri=f"{path}#sha256={'0' * 64}")


def test_stored_stft_kernels_of_other_settings_are_refused(tmp_path, tiny):
    state = dict(tiny.separator.state_dict())
    state["stft.conv_real.weight"] = state["stft.conv_real.weight"].roll(1, dims=2)  # another window alignment
    torch.save(state, tmp_path / "sep.pt")
    with pytest.raises(AptUssError, match=r"stft.conv_real.weight differs from the STFT this code computes"):
        load_backbone("tiny", separator_checkpoint_uri=str(tmp_path / "sep.pt"))
