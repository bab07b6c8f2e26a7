"""Run ../separator_generalisation-2026-12-06/seen_classes_like_unseen.py on the 40-clip seen corpus: held-out clips
38-39 of each seen class (neither backbone trained on them), class-mean prompts from clips 0-37.

  .venv/bin/python docs/measurements/seen_clips40-2026-12-07/seen_like_unseen_on_clips40.py SEEN_ARCHIVE [CHECKPOINT]

SEEN_ARCHIVE: the 40-clip debian_sounds_seen.tar.gz of build_seen_corpus.py; CHECKPOINT as the script takes it (none:
the shipped weights). The patch holds in this process only."""
import runpy
import sys

from apt_uss.steps import backbone

archive = sys.argv.pop(1)
recipe_corpus = backbone._corpus


def corpus_of_40(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri=""):
    return recipe_corpus(corpus, n_classes, 40, val_clips, seed, archive)


backbone._corpus = corpus_of_40
sys.argv[0] = "docs/measurements/separator_generalisation-2026-12-06/seen_classes_like_unseen.py"
runpy.run_path(sys.argv[0], run_name="__main__")
