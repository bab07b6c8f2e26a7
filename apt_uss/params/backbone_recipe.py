"""The recipe of the shipped demo weights (``make backbone``): the backbone pipeline, its steps and the CLI take
their defaults from here. A module of constants, so ``python -m apt_uss --help`` shows them without torch."""

# The seen classes: the real recordings of `make corpus` (debian_sounds_seen: 128 classes of 10 clips), or
# `synthetic` (the generated seen classes of the weights before 2026-12-05).
CORPORA = ("debian_sounds", "synthetic")
CORPUS = "debian_sounds"
# 128 seen classes of 10 clips generalise to unseen classes far better than 40 of 24 did (same steps):
# on the default evaluation set, full-data baseline pooled SDR 5.04 dB against 1.92 dB.
SEEN_CLASSES, CLIPS_PER_CLASS, VAL_CLIPS = 128, 10, 2
SED_STEPS, SED_BATCH_SIZE, SED_LR = 1500, 16, 1e-3
# A compiled training step (0.71 s with its mixtures and queries, against about 1.1 s eager) fits 4,000
# separator steps in the budget (`make backbone`: 56.5 min on 2 cores);
# more steps are what gave APT more room (docs/demo-backbone.md, "Where the full-data gain is lost").
SEPARATOR_STEPS, SEPARATOR_BATCH_SIZE, SEPARATOR_LR, SEPARATOR_COMPILED = 4000, 8, 2e-3, True
# What queries the separator in training: "own" (the target crop's own SED embedding, the ZS-ASP recipe) or
# "other_clip" (another recording of its class) or "class_mean" (the mean embedding of 1 to all of its class's other
# clips, an n-shot prompt; apt_uss.models.pretrain.SEPARATOR_QUERIES).
SEPARATOR_QUERY = "own"
