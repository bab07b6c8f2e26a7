"""The backbone: configs, the choice of a backbone (no torch), HTS-AT, the separator, checkpoints, pretraining.

Import from the modules (``apt_uss.models.backbone``, ``.config``, ``.choice``): the package itself loads no torch,
so the parameter check that reads ``.choice`` and ``.config`` starts without it.
"""
