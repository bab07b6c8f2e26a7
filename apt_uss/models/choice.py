"""The choice of a backbone as the pipeline's parameters give it, and the weights that ship in the package: what the
parameter check reads, without torch (``apt_uss.models.backbone`` loads the backbone)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path

from apt_uss.errors import AptUssError
from apt_uss.models.config import get_config
from apt_uss.params.spec import BACKBONE_PARAMETERS, parse_value

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Configs whose trained weights ship inside the package: config name -> file in WEIGHTS_DIR.
PACKAGED_WEIGHTS = {"demo": "demo.pt"}


def packaged_checkpoint_uri(name: str) -> str:
    """The shipped checkpoint of config ``name``, pinned to the sha256 its card records."""
    path = WEIGHTS_DIR / PACKAGED_WEIGHTS[name]
    card = path.with_suffix(".json")
    if not path.is_file() or not card.is_file():
        raise AptUssError(f"backbone={name!r}: its weights {path} (and card {card.name}) are missing: "
                          "run `make backbone` to train them, or pass checkpoint URIs")
    return f"{path}#sha256={json.loads(card.read_text())['sha256']}"


@dataclass(frozen=True)
class BackboneChoice:
    """Which frozen backbone a step runs, and where: what travels between steps as one parameter (without torch:
    the parameter check reads it; ``apt_uss.models.backbone.BackboneSpec`` adds loading the backbone).

    ``random_weights`` allows a part without a checkpoint to start from weights seeded by ``seed``
    (tests and smoke runs); without it such a backbone is refused, naming the missing checkpoint URIs.
    """

    name: str = "demo"
    sed_checkpoint_uri: str = ""
    separator_checkpoint_uri: str = ""
    seed: int = 0
    device: str = "auto"
    random_weights: bool = False

    @classmethod
    def of(cls, value: "BackboneChoice | dict | str"):
        """A spec from a spec, a config name, or a dict of the pipeline parameters (values may be text, as
        KFP hands them inside a dict)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, BackboneChoice):
            return cls(**{f.name: getattr(value, f.name) for f in dataclass_fields(value)})
        if isinstance(value, str):
            return cls(name=value)
        if not isinstance(value, dict):
            raise AptUssError(f"backbone={value!r} is not valid: give a config name or a dict of {', '.join(BACKBONE_PARAMETERS)}")
        unknown = sorted(set(value) - set(BACKBONE_PARAMETERS))
        if unknown:
            raise AptUssError(f"the backbone spec has unknown key(s) {', '.join(unknown)}: "
                              f"use {', '.join(BACKBONE_PARAMETERS)}")
        given = {name: parse_value(name, value[name]) for name in BACKBONE_PARAMETERS if name in value}
        return cls(name=given.pop("backbone", "demo"), seed=given.pop("backbone_seed", 0), **given)

    def as_params(self) -> dict:
        """The spec as the pipeline parameters it is made of."""
        fields = asdict(self)
        return {"backbone": fields.pop("name"), **{k: v for k, v in fields.items() if k != "seed"},
                "backbone_seed": self.seed}

    def record(self) -> dict:
        """What a prompt file keeps to find this backbone again: the parameters without the device (where it ran)."""
        return {k: v for k, v in self.as_params().items() if k != "device"}

    @property
    def uses_packaged_weights(self) -> bool:
        """The config's weights ship in the package and no checkpoint URI replaces them."""
        return self.name in PACKAGED_WEIGHTS and not (self.sed_checkpoint_uri or self.separator_checkpoint_uri)

    def separator_weights_uri(self) -> str:
        """The separator checkpoint the backbone loads: the given one, the shipped one (pinned by sha256), or ""."""
        return packaged_checkpoint_uri(self.name) if self.uses_packaged_weights else self.separator_checkpoint_uri

    def missing_checkpoints(self) -> list[str]:
        """The checkpoint parameters a run must give, known before any file is read: the separator's
        (it may carry the SED) unless the config's weights ship in the package."""
        if self.uses_packaged_weights:
            return []
        return [] if self.separator_checkpoint_uri else ["separator_checkpoint_uri"] + (
            [] if self.sed_checkpoint_uri else ["sed_checkpoint_uri"])

    def check_weights(self) -> None:
        """Refuse a backbone without weights unless ``random_weights`` asks for them; the shipped weights must be there."""
        get_config(self.name)
        self.separator_weights_uri()  # the shipped weights must be there
        missing = self.missing_checkpoints()
        if missing and not self.random_weights:
            raise AptUssError(f"backbone={self.name!r} has no weights: give {' and '.join(missing)} "
                              "(README, The paper's checkpoints), or random_weights=true for a smoke run on "
                              "seeded random weights")
