"""Reading backbone checkpoints strictly, from any URI the project can fetch.

Accepts plain state dicts and PyTorch Lightning ``.ckpt`` dicts (weights under
``state_dict``), with the prefixes the official checkpoints use: ``sed_model.`` on the
SED checkpoint, and the separator checkpoint's embedded SED under ``at_model.``.
A key that is missing, unexpected or of another shape is an error listing them:
``strict=False`` on these checkpoints silently gives random outputs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from apt_uss.errors import AptUssError
from apt_uss.io.atomic import atomic_path
from apt_uss.io.download import fetch_uri, sha256_file
from apt_uss.params.checks import check_sha256

EMBEDDED_SED = "at_model."
# Entries every model computes from its config (STFT/iSTFT and mel kernels, attention index
# tables): official checkpoints store them (and they are checked); the project's own
# exports leave them out, which keeps the demo backbone small.
COMPUTED_SUFFIXES = ("stft.conv_real.weight", "stft.conv_imag.weight", "istft.ola_window",
                     "logmel_extractor.melW", "attn.relative_position_index")


def is_computed(key: str) -> bool:
    return key.endswith(COMPUTED_SUFFIXES)
WRAPPERS = ("sed_model.", "model.", "module.")


def split_checksum(uri: str) -> tuple[str, str]:
    """``https://host/x.ckpt#sha256=<hex>`` -> (URI, hex): pip's convention for pinning a download."""
    base, _, fragment = uri.partition("#")
    if fragment and not fragment.startswith("sha256="):
        raise AptUssError(f"checkpoint URI {uri!r}: the only fragment understood is #sha256=<64 hex digits>")
    return base, fragment.removeprefix("sha256=")


PLAIN = "a plain state dict of tensors, as torch.save(model.state_dict(), path) writes"


def _unreadable(exc: Exception, path) -> str:
    """Why torch.load refused a file, in one line, without torch's own advice (which is to turn
    the safe loader off, and would run whatever code the file holds)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        return f"is an empty file, not {PLAIN}"
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return (f"is not {PLAIN}: it holds a pickled Python object ({blocked.group(1)}), which is never loaded, "
                "as unpickling it can run code")
    if "Weights only load failed" in text:  # neither a zip archive nor a pickle of tensors
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0] \
            if "WeightsUnpickler error:" in text else ""
        return f"is not {PLAIN}: its bytes are not a pickle of tensors" + (f" ({detail.strip()})" if detail else "")
    lines = [line for line in text.strip().splitlines() if line.strip() and "weights_only" not in line]
    first = lines[0].strip() if lines else ""
    first = re.split(r"(?<=\.) ", first, maxsplit=1)[0][:200]  # its first sentence, whole
    return f"is not a readable PyTorch checkpoint ({PLAIN}): {type(exc).__name__}" + (f": {first}" if first else "")


def fetch_checkpoint(uri: str, slot: str) -> Path:
    """The local file of the checkpoint at ``uri`` (fetched once, then cached; a ``#sha256=`` pin is checked)."""
    base, sha256 = split_checksum(uri)
    return fetch_uri(base, sha256=check_sha256(sha256, f"{slot}_checkpoint_uri #sha256"), what=f"{slot}_checkpoint_uri")


def checkpoint_sha256(uri: str, slot: str) -> str:
    """The sha256 of the checkpoint at ``uri``: its ``#sha256=`` pin (checked whenever the file is fetched to be
    read), else the file's own digest."""
    sha256 = check_sha256(split_checksum(uri)[1], f"{slot}_checkpoint_uri #sha256")
    return sha256 or sha256_file(fetch_checkpoint(uri, slot))


def read_state_dict(uri: str, slot: str) -> dict[str, torch.Tensor]:
    """The weights in a checkpoint at ``uri`` (a path or file/https/s3 URI, optionally ``#sha256=...``)."""
    path = fetch_checkpoint(uri, slot)
    with warnings.catch_warnings(record=True) as caught:  # the unpickler's warnings on a foreign file are noise
        warnings.simplefilter("always")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or foreign files raise many different types
            raise AptUssError(f"{slot} checkpoint {uri!r} {_unreadable(exc, path)}") from None
    for w in caught:  # a checkpoint that loads keeps its warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AptUssError(f"{slot} checkpoint {uri!r} holds no state dict of tensors: it must be {PLAIN}")
    return state


def strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove prefixes that every key shares (``sed_model.``, ``at_model.sed_model.``, ...)."""
    changed = True
    while changed:
        changed = False
        for prefix in (EMBEDDED_SED, *WRAPPERS):
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def split_embedded_sed(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(separator entries, the embedded SED's entries) of a separator checkpoint."""
    state = strip_wrappers({k: v for k, v in state.items()})
    own = {k: v for k, v in state.items() if not k.startswith(EMBEDDED_SED)}
    sed = {k[len(EMBEDDED_SED):]: v for k, v in state.items() if k.startswith(EMBEDDED_SED)}
    return own, strip_wrappers(sed) if sed else {}


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], slot: str, uri: str) -> None:
    own = module.state_dict()
    state = dict(state)
    for key in set(own) - set(state):
        if is_computed(key):
            state[key] = own[key]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        raise AptUssError(
            f"{slot} checkpoint {uri!r} does not fit the {slot} model: missing [{_few(missing)}], "
            f"unexpected [{_few(unexpected)}], shape mismatch (checkpoint vs model) [{_few(shapes)}]"
        )
    module.load_state_dict(state, strict=True)


def export_backbone(sed: nn.Module, separator: nn.Module, path) -> None:
    """One file for both parts: the separator's entries and the SED's under ``at_model.``, as
    the official separator checkpoint embeds its SED; computed entries are left out."""
    state = {k: v.detach().cpu().contiguous() for k, v in separator.state_dict().items() if not is_computed(k)}
    state.update({EMBEDDED_SED + k: v.detach().cpu().contiguous()
                  for k, v in sed.state_dict().items() if not is_computed(k)})
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
