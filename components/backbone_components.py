"""Thin KFP adapters for pretraining the demo backbone (``apt_uss.steps.backbone``)."""


from kfp import dsl
from kfp.dsl import Input, Model, Output

from components.apt_uss_components import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def check_backbone_recipe(config: str, corpus: str, n_classes: int, clips_per_class: int, val_clips: int,
                          sed_steps: int, sed_batch_size: int, sed_lr: float, separator_steps: int,
                          separator_batch_size: int, separator_lr: float, separator_query: str,
                          separator_loss: str = "l1", separator_augment: str = "none"):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.backbone import check_backbone_recipe

    configure_logging()
    check_backbone_recipe(config=config, corpus=corpus, n_classes=n_classes, clips_per_class=clips_per_class,
                          val_clips=val_clips, sed_steps=sed_steps, sed_batch_size=sed_batch_size, sed_lr=sed_lr,
                          separator_steps=separator_steps, separator_batch_size=separator_batch_size,
                          separator_lr=separator_lr, separator_query=separator_query,
                          separator_loss=separator_loss, separator_augment=separator_augment)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pretrain_sed(config: str, corpus: str, corpus_uri: str, n_classes: int, clips_per_class: int, val_clips: int,
                 seed: int, steps: int, batch_size: int, lr: float, sed: Output[Model]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.backbone import pretrain_sed_step

    configure_logging()
    sed.metadata.update(pretrain_sed_step(out_sed=sed.path, config=config, corpus=corpus, corpus_uri=corpus_uri,
                                          n_classes=n_classes, clips_per_class=clips_per_class, val_clips=val_clips,
                                          seed=seed, steps=steps, batch_size=batch_size, lr=lr))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pretrain_separator(sed: Input[Model], config: str, corpus: str, corpus_uri: str, n_classes: int,
                       clips_per_class: int, val_clips: int, seed: int, steps: int, batch_size: int, lr: float,
                       compiled: bool, backbone: Output[Model], query: str = "own", loss: str = "l1",
                       augment: str = "none"):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.backbone import pretrain_separator_step

    configure_logging()
    record = pretrain_separator_step(sed_dir=sed.path, out_dir=backbone.path, config=config, corpus=corpus,
                                     corpus_uri=corpus_uri, n_classes=n_classes, clips_per_class=clips_per_class,
                                     val_clips=val_clips, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
                                     compiled=compiled, query=query, loss=loss, augment=augment)
    backbone.metadata.update({k: v for k, v in record.items() if isinstance(v, (int, float, str))})
