"""Forward + backward of one demo separator training step (batch 8, 2-s crops, 2 threads; the shipped weights): float32
and bfloat16 autocast, eager and under torch.compile. Run from the repository root: PYTHONPATH=. .venv/bin/python THIS
(output of the run quoted in demo-backbone.md: profile_output.txt)."""
import time

import torch

from apt_uss.models.backbone import BackboneSpec

torch.set_num_threads(2)
bb = BackboneSpec(name="demo").load()
sed, sep = bb.sed, bb.separator
x = torch.randn(8, 64000)*0.1
def t(f, n=6):
    f(); f()
    s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n
with torch.no_grad():
    q = sed(x)["latent_output"]
print("sed query", t(lambda: sed(x)), flush=True)
sep.train().requires_grad_(True)
opt = torch.optim.Adam(sep.parameters(), 1e-3)
def step(ctx=None, model=sep):
    if ctx:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            e = model(x, q)["wav"]
    else:
        e = model(x, q)["wav"]
    l = torch.nn.functional.l1_loss(e.float(), x)
    opt.zero_grad(); l.backward(); opt.step()
print("sep fp32 eager", t(step), flush=True)
print("sep bf16 eager", t(lambda: step(True)), flush=True)
import torch._dynamo

c = torch.compile(sep)
s=time.perf_counter(); step(model=c); print("compile fp32", time.perf_counter()-s, flush=True)
print("sep fp32 compiled", t(lambda: step(model=c)), flush=True)
torch._dynamo.reset()
c2 = torch.compile(sep)
s=time.perf_counter(); step(True, model=c2); print("compile bf16", time.perf_counter()-s, flush=True)
print("sep bf16 compiled", t(lambda: step(True, model=c2)), flush=True)
