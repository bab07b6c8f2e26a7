"""Forward + backward of one training step (batch 8, 2-s crops, 2 threads, random weights and queries), eager, float32
and bfloat16 autocast, at demo's separator width and two wider ones. Run from the repository root:
PYTHONPATH=. .venv/bin/python THIS (output: profile_output.txt)."""
import time

import torch

from apt_uss.models.config import SeparatorConfig
from apt_uss.models.separator import QuerySeparator

torch.set_num_threads(2)
x = torch.randn(8, 64000)*0.1; q = torch.randn(8,128)
def t(f, n=4):
    f(); f()
    s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n
for ch in [(8,16,32,64,128),(16,32,64,128,256),(12,24,48,96,192)]:
    sep = QuerySeparator(SeparatorConfig(n_fft=512, hop=256, channels=ch), 128)
    opt = torch.optim.Adam(sep.parameters(), 1e-3)
    def step(bf):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
            e = sep(x, q)["wav"]
        l = torch.nn.functional.l1_loss(e.float(), x)
        opt.zero_grad(); l.backward(); opt.step()
    n = sum(p.numel() for p in sep.parameters())
    print(ch, n, "fp32", round(t(lambda: step(False)),3), "bf16", round(t(lambda: step(True)),3), flush=True)
