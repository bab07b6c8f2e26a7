"""Thin KFP adapters for pretraining the demo backbone (``apt_uss.backbone_steps``)."""


from kfp import dsl
from kfp.dsl import Model, Output, Input

from components.apt_uss_components import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pretrain_sed(config: str, n_classes: int, clips_per_class: int, val_clips: int, seed: int, steps: int,
                 batch_size: int, lr: float, sed: Output[Model]):
    from apt_uss.backbone_steps import pretrain_sed_step
    from apt_uss.logs import configure_logging

    configure_logging()
    sed.metadata.update(pretrain_sed_step(sed.path, config, n_classes, clips_per_class, val_clips, seed, steps,
                                          batch_size, lr))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pretrain_separator(sed: Input[Model], config: str, n_classes: int, clips_per_class: int, val_clips: int,
                       seed: int, steps: int, batch_size: int, lr: float, compiled: bool,
                       backbone: Output[Model]):
    from apt_uss.backbone_steps import pretrain_separator_step
    from apt_uss.logs import configure_logging

    configure_logging()
    record = pretrain_separator_step(sed.path, backbone.path, config, n_classes, clips_per_class, val_clips, seed,
                                     steps, batch_size, lr, compiled)
    backbone.metadata.update({k: v for k, v in record.items() if isinstance(v, (int, float, str))})
