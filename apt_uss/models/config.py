"""Named backbone configurations. All come from the same model code, at different sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AptUssError


@dataclass(frozen=True)
class SEDConfig:
    n_fft: int = 1024
    hop: int = 320
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 14000.0
    channels: tuple[int, ...] = (16, 32, 64)
    embed_dim: int = 128
    n_classes: int = 527


@dataclass(frozen=True)
class SeparatorConfig:
    n_fft: int = 1024
    hop: int = 320
    channels: tuple[int, ...] = (8, 16, 32, 64)
    bn_momentum: float = 0.01


@dataclass(frozen=True)
class BackboneConfig:
    name: str
    sample_rate: int = 32000
    sed: SEDConfig = field(default_factory=SEDConfig)
    separator: SeparatorConfig = field(default_factory=SeparatorConfig)

    @property
    def embed_dim(self) -> int:
        return self.sed.embed_dim


BACKBONE_CONFIGS = {
    # For unit tests: seconds on CPU.
    "tiny": BackboneConfig(
        name="tiny",
        sed=SEDConfig(channels=(4, 8), embed_dim=16, n_classes=8),
        separator=SeparatorConfig(n_fft=256, hop=128, channels=(4, 8)),
    ),
    # For demos and the default local run on 2 CPU cores.
    "small": BackboneConfig(name="small"),
}


def get_config(name: str) -> BackboneConfig:
    try:
        return BACKBONE_CONFIGS[name]
    except KeyError:
        raise AptUssError(
            f"backbone={name!r} is unknown: allowed are {', '.join(BACKBONE_CONFIGS)}"
        ) from None
