"""``python -m apt_uss.tools.separation_example``: mix two real sounds and separate one with a run's prompts.

The README's worked example. It takes a test-fold clip of ``--target`` and one of ``--interferer``
from the built ``debian_sounds`` corpus (or, with ``--interferer speech``, a sentence spoken by
espeak-ng), mixes them at equal energy into ``mixture.wav``, separates the target with
``python -m apt_uss separate`` (the same code path) using each prompt file given, and prints each
estimate's SDR and SI-SDR against the target clip and the mixture's own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.data import debian_sounds
from apt_uss.data.audio import SAMPLE_RATE, read_audio, to_model_format
from apt_uss.data.mixtures import mix
from apt_uss.errors import AptUssError
from apt_uss.evaluation.metrics import bss_sdr, si_sdr

SENTENCE = ("The quick brown fox jumps over the lazy dog, and then it runs back across the field "
            "to see whether anybody noticed.")
NO_ESPEAK = "espeak-ng is not installed (apt-get install espeak-ng): --interferer speech needs it"


def speech(seconds: float, workdir: Path) -> np.ndarray:
    """A spoken English sentence from espeak-ng at 32 kHz mono, ``seconds`` long (repeated if short)."""
    if shutil.which("espeak-ng") is None:
        raise AptUssError(NO_ESPEAK)
    path = workdir / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(path), SENTENCE], check=True,
                   capture_output=True)
    audio, rate = read_audio(path)
    mono = to_model_format(audio, rate)
    n = int(seconds * SAMPLE_RATE)
    return np.resize(mono, n).astype(np.float32)


def test_clip(meta: pd.DataFrame, root: Path, category: str, index: int) -> tuple[str, np.ndarray]:
    rows = meta[(meta["category"] == category) & meta["fold"].isin([4, 5])].sort_values("filename")
    if rows.empty:
        raise AptUssError(f"class {category!r} is not in debian_sounds: use one of "
                          f"{', '.join(sorted(meta['category'].unique()))}")
    name = rows["filename"].iloc[index % len(rows)]
    audio, _ = sf.read(root / "audio" / name, dtype="float32")
    return name, audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apt_uss.tools.separation_example", description=__doc__)
    parser.add_argument("--prompts", nargs="+", required=True, help="prompt file(s): e.g. prompts_initial.npz and "
                                                                   "prompts_tuned.npz of a debian_sounds run")
    parser.add_argument("--target", default="violin", help="class to separate (default: %(default)s)")
    parser.add_argument("--interferer", default="trumpet", help="another class, or `speech` (espeak-ng)")
    parser.add_argument("--clip", type=int, default=0, help="which test clip of each class (default: the first)")
    parser.add_argument("--out", default="dist/separation_example", help="folder for the WAV files")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if args.interferer == "speech" and shutil.which("espeak-ng") is None:  # before any file is written
            raise AptUssError(NO_ESPEAK)
        root = debian_sounds.extracted(debian_sounds.NAME)
        meta = pd.read_csv(root / "meta" / "esc50.csv")
        target_name, target = test_clip(meta, root, args.target, args.clip)
        if args.interferer == "speech":
            with tempfile.TemporaryDirectory() as tmp:
                other_name, other = "espeak-ng: " + SENTENCE[:30] + "...", speech(len(target) / SAMPLE_RATE, Path(tmp))
        else:
            other_name, other = test_clip(meta, root, args.interferer, args.clip)
        mixture = mix(target, other, "energy_match")
        out.mkdir(parents=True, exist_ok=True)
        peak = max(float(np.abs(mixture).max()), 1e-9)
        scale = min(1.0, 0.99 / peak)  # a WAV file holds what the separator then reads
        sf.write(out / "mixture.wav", mixture * scale, SAMPLE_RATE, subtype="FLOAT")
        sf.write(out / "target.wav", target * scale, SAMPLE_RATE, subtype="FLOAT")
        result = {"target": f"{args.target} ({target_name})", "interferer": f"{args.interferer} ({other_name})",
                  "mixture_sdr": bss_sdr(target, mixture), "mixture_si_sdr": si_sdr(target, mixture)}
        for prompts in args.prompts:
            estimate_path = out / f"{args.target}_{Path(prompts).stem}.wav"
            command = [sys.executable, "-m", "apt_uss", "separate", "--prompts", prompts, "--class", args.target,
                       str(out / "mixture.wav"), str(estimate_path)]
            print("$", "python", " ".join(command[1:]), flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise AptUssError(f"separate failed: {done.stderr.strip()[-400:]}")
            estimate, _ = sf.read(estimate_path, dtype="float32")
            result[Path(prompts).stem] = {"sdr": bss_sdr(target * scale, estimate),
                                          "si_sdr": si_sdr(target * scale, estimate)}
    except AptUssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
