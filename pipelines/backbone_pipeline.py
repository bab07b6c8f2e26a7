"""Pretraining the demo backbone: SED classifier on seen classes -> separator queried by its embeddings."""


from kfp import dsl

from components.backbone_components import pretrain_sed, pretrain_separator


@dsl.pipeline(name="apt-uss-backbone", description="Pretrain the small demo backbone on synthetic seen classes")
def backbone_pipeline(
    config: str = "demo",
    n_classes: int = 40,
    clips_per_class: int = 24,
    val_clips: int = 4,
    seed: int = 0,
    sed_steps: int = 1500,
    sed_batch_size: int = 16,
    sed_lr: float = 1e-3,
    separator_steps: int = 2000,
    separator_batch_size: int = 8,
    separator_lr: float = 2e-3,
) -> dsl.Model:
    sed = pretrain_sed(config=config, n_classes=n_classes, clips_per_class=clips_per_class, val_clips=val_clips,
                       seed=seed, steps=sed_steps, batch_size=sed_batch_size, lr=sed_lr)
    sed.set_display_name("SED as a classifier of the seen classes")
    sep = pretrain_separator(sed=sed.outputs["sed"], config=config, n_classes=n_classes,
                             clips_per_class=clips_per_class, val_clips=val_clips, seed=seed, steps=separator_steps,
                             batch_size=separator_batch_size, lr=separator_lr)
    sep.set_display_name("separator queried by SED embeddings")
    return sep.outputs["backbone"]
