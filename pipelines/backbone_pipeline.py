"""Pretraining the demo backbone: SED classifier on seen classes -> separator queried by its embeddings."""


from kfp import dsl

from apt_uss.params import backbone_recipe as recipe
from components.backbone_components import check_backbone_recipe, pretrain_sed, pretrain_separator


@dsl.pipeline(name="apt-uss-backbone", description="Pretrain the small demo backbone on the seen classes of a corpus")
def backbone_pipeline(
    config: str = "demo",
    corpus: str = recipe.CORPUS,
    corpus_uri: str = "",
    n_classes: int = recipe.SEEN_CLASSES,
    clips_per_class: int = recipe.CLIPS_PER_CLASS,
    val_clips: int = recipe.VAL_CLIPS,
    seed: int = 0,
    sed_steps: int = recipe.SED_STEPS,
    sed_batch_size: int = recipe.SED_BATCH_SIZE,
    sed_lr: float = recipe.SED_LR,
    separator_steps: int = recipe.SEPARATOR_STEPS,
    separator_batch_size: int = recipe.SEPARATOR_BATCH_SIZE,
    separator_lr: float = recipe.SEPARATOR_LR,
    separator_compiled: bool = recipe.SEPARATOR_COMPILED,
    separator_query: str = recipe.SEPARATOR_QUERY,
    separator_loss: str = recipe.SEPARATOR_LOSS,
    separator_augment: str = recipe.SEPARATOR_AUGMENT,
) -> dsl.Model:
    # First, so a value typed in the Kubeflow UI is checked before minutes of SED training.
    checked = check_backbone_recipe(config=config, corpus=corpus, n_classes=n_classes, clips_per_class=clips_per_class,
                                    val_clips=val_clips, sed_steps=sed_steps, sed_batch_size=sed_batch_size,
                                    sed_lr=sed_lr, separator_steps=separator_steps,
                                    separator_batch_size=separator_batch_size, separator_lr=separator_lr,
                                    separator_query=separator_query, separator_loss=separator_loss,
                                    separator_augment=separator_augment)
    checked.set_display_name("recipe check")
    sed = pretrain_sed(config=config, corpus=corpus, corpus_uri=corpus_uri, n_classes=n_classes,
                       clips_per_class=clips_per_class, val_clips=val_clips, seed=seed, steps=sed_steps,
                       batch_size=sed_batch_size, lr=sed_lr)
    sed.after(checked)
    sed.set_display_name("SED as a classifier of the seen classes")
    sep = pretrain_separator(sed=sed.outputs["sed"], config=config, corpus=corpus, corpus_uri=corpus_uri,
                             n_classes=n_classes, clips_per_class=clips_per_class, val_clips=val_clips, seed=seed,
                             steps=separator_steps, batch_size=separator_batch_size, lr=separator_lr,
                             compiled=separator_compiled, query=separator_query, loss=separator_loss,
                             augment=separator_augment)
    sep.set_display_name("separator queried by SED embeddings")
    return sep.outputs["backbone"]
