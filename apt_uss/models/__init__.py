from apt_uss.models.backbone import Backbone, load_backbone
from apt_uss.models.config import BACKBONE_CONFIGS, BackboneConfig, get_config

__all__ = ["Backbone", "load_backbone", "BACKBONE_CONFIGS", "BackboneConfig", "get_config"]
