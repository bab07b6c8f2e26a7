"""60 SED steps of the demo recipe, then a hash of the weights: run with ATEN_CPU_CAPABILITY unset and =avx2."""
import hashlib
import torch
from apt_uss.models import pretrain
from apt_uss.models.backbone import seeded_backbone
from apt_uss.models.config import get_config
from apt_uss.steps.backbone import _corpus

torch.set_num_threads(2)
x, y, vx, vy = _corpus("debian_sounds", 128, 10, 2, 0)
sed = seeded_backbone(get_config("demo"), 0).sed
losses = pretrain.train_sed(sed, x, y, 60, 16, 1e-3, 0)
h = hashlib.sha256(b"".join(v.numpy().tobytes() for v in sed.state_dict().values())).hexdigest()
print("RESULT", torch.backends.cpu.get_cpu_capability(), repr(losses[-1]), h[:16], flush=True)
