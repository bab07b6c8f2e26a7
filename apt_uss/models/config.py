"""Named backbone configurations. All come from the same model code, at different sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from apt_uss.errors import AptUssError


@dataclass(frozen=True)
class SEDConfig:
    """HTS-AT. Defaults are the paper's 2048-d model (embed dim 256, four stages)."""

    n_fft: int = 1024
    hop: int = 320
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 14000.0
    spec_size: int = 256
    patch_size: int = 4
    patch_stride: int = 4
    window_size: int = 8
    embed_dim: int = 256
    depths: tuple[int, ...] = (2, 2, 6, 2)
    heads: tuple[int, ...] = (4, 8, 16, 32)
    mlp_ratio: float = 4.0
    n_classes: int = 527

    @property
    def latent_dim(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class SeparatorConfig:
    """ZeroShotASP U-Net. Defaults are the paper's (n_fft 2048, six encoder blocks 32..1024)."""

    n_fft: int = 2048
    hop: int = 320
    channels: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    bn_momentum: float = 0.01


@dataclass(frozen=True)
class BackboneConfig:
    name: str
    sample_rate: int = 32000
    sed: SEDConfig = field(default_factory=SEDConfig)
    separator: SeparatorConfig = field(default_factory=SeparatorConfig)

    @property
    def embed_dim(self) -> int:
        """The prompt (query) dimension: the SED's latent width."""
        return self.sed.latent_dim


BACKBONE_CONFIGS = {
    # For unit tests: seconds on CPU.
    "tiny": BackboneConfig(
        name="tiny",
        sed=SEDConfig(n_fft=256, n_mels=16, spec_size=64, window_size=4, embed_dim=8, depths=(1, 1),
                      heads=(1, 2), n_classes=8),
        separator=SeparatorConfig(n_fft=256, hop=128, channels=(4, 8)),
    ),
    # For demos and the default local run on 2 CPU cores.
    "small": BackboneConfig(
        name="small",
        sed=SEDConfig(embed_dim=16, depths=(1, 1, 1, 1), heads=(1, 2, 4, 8), n_classes=64),
        separator=SeparatorConfig(n_fft=1024, hop=320, channels=(8, 16, 32, 64)),
    ),
    # The weights this project trained and ships (`make backbone`): the default. The SED is
    # `small`'s with a head for the 128 seen classes it is pretrained on; the separator trades
    # frequency resolution (n_fft 512, 50% overlap) for a fifth U-Net level: 3.6x `small`'s
    # parameters and 256 conditioning channels at the bottom, yet a pretraining step (batch 8,
    # 2 CPU cores) takes about 1.0 s against `small`'s 2.2 s.
    "demo": BackboneConfig(
        name="demo",
        sed=SEDConfig(embed_dim=16, depths=(1, 1, 1, 1), heads=(1, 2, 4, 8), n_classes=128),
        separator=SeparatorConfig(n_fft=512, hop=256, channels=(8, 16, 32, 64, 128)),
    ),
    # The paper's backbone: 2048-d HTS-AT and the ZS-ASP separator (official checkpoints load into it).
    "paper": BackboneConfig(name="paper"),
}


def get_config(name: str) -> BackboneConfig:
    try:
        return BACKBONE_CONFIGS[name]
    except KeyError:
        raise AptUssError(
            f"backbone={name!r} is unknown: allowed are {', '.join(BACKBONE_CONFIGS)}"
        ) from None
