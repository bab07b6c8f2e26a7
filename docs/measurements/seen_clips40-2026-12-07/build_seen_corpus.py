"""Scratch (validation-only experiment): the corpus with 40 clips of each seen class instead of 10.

The recipe's seen part holds 10 generated phrases of each of the 128 seen classes: "every seen class and clip the
corpus has", a limit of the build, not a tuned value. Phrases are drawn per (class, clip index) from the `corpus_clip`
stream, so a build with more seen clips keeps the first 10 of each class as they are and leaves the unseen part
(the evaluation dataset) byte-identical; this script checks both against the shipped build before it returns.

  .venv/bin/python docs/measurements/seen_clips40-2026-12-07/build_seen_corpus.py OUT_DIR
  .venv/bin/python -m apt_uss pretrain-sed --out RUN/sed --corpus-uri OUT_DIR/debian_sounds_seen.tar.gz \
      --clips-per-class 40
  .venv/bin/python -m apt_uss pretrain-separator --sed-dir RUN/sed --out RUN/sep \
      --corpus-uri OUT_DIR/debian_sounds_seen.tar.gz --clips-per-class 40
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 \
      clips40=RUN/sep/backbone.pt
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL clips40 \
      RUN/sep/backbone.pt rows_diag.csv
  .venv/bin/python docs/measurements/wide_sed-2026-12-07/nearest_class_mean.py VAL clips40 RUN/sep/backbone.pt
  .venv/bin/python docs/measurements/seen_clips40-2026-12-07/seen_like_unseen_on_clips40.py \
      OUT_DIR/debian_sounds_seen.tar.gz [RUN/sep/backbone.pt]      (none: the shipped weights)

Run on the code of 51af0ac (its output: build.log); since then only its logging set-up, import order and this
docstring were edited.
"""
import json
import sys
import tarfile
from pathlib import Path

from apt_uss.data import debian_sounds
from apt_uss.io.download import cache_dir
from apt_uss.logs import configure_logging

SEEN_CLIPS = 40

configure_logging()  # the build's per-class progress lines (added after the recorded run, which printed none)
out = Path(sys.argv[1])
record = debian_sounds.build_corpus(out_dir=out, deb_dir=cache_dir() / "debs", seen_clips=SEEN_CLIPS)
shipped = json.loads((debian_sounds.corpus_dir() / "build.json").read_text())
same = record["parts"][debian_sounds.NAME]["sha256"] == shipped["parts"][debian_sounds.NAME]["sha256"]
print(f"unseen part ({debian_sounds.NAME}) identical to the shipped build: {same} "
      f"({record['parts'][debian_sounds.NAME]['sha256'][:12]})", flush=True)
print(f"seen part: {record['parts'][debian_sounds.SEEN_NAME]['clips']} clips, "
      f"sha256 {record['parts'][debian_sounds.SEEN_NAME]['sha256']}; built in {record['seconds']} s", flush=True)
if not same:
    sys.exit("the evaluation dataset changed: this build cannot be compared with the shipped weights")


def members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".wav")}


old = members(debian_sounds.corpus_dir() / f"{debian_sounds.SEEN_NAME}.tar.gz")
new = members(out / f"{debian_sounds.SEEN_NAME}.tar.gz")
kept = sum(new.get(name) == data for name, data in old.items())
print(f"seen clips of the shipped build found byte-identical in this one: {kept} of {len(old)}", flush=True)
