"""Scratch: the seen part with a second SoundFont's recordings (TimGM6mb) merged under the same labels."""
import logging, sys, tempfile, time
from pathlib import Path
from dataclasses import replace
from apt_uss.data import debian_sounds as ds
from apt_uss.data.fluidsynth import fluidsynth_version
from apt_uss.data.soundfont import read_soundfont
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
TIM = ds.DebianSource(package="timgm6mb-soundfont", version="1.3-5",
    sha256="034abdfb296d9353433513dad5dbdcab46425ee6008fc02fe7039b46e75edc54",
    license="GPL-2 (TimGM6mb, Tim Brechbill; usr/share/doc/timgm6mb-soundfont/copyright)",
    soundfont="usr/share/sounds/sf2/TimGM6mb.sf2")
out = Path(sys.argv[1]); seed = 0; n = 10
version = fluidsynth_version()
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    fr = ds.extract_deb(ds.fetch_deb(ds.SOUNDFONT_SOURCE), tmp / "f")
    tr = ds.extract_deb(ds.fetch_deb(TIM, Path("/tmp/tim")), tmp / "t")
    fsf, tsf = fr / ds.SOUNDFONT_SOURCE.soundfont, tr / TIM.soundfont
    _, seen = ds.plan_classes(read_soundfont(fsf))
    _, tseen = ds.plan_classes(read_soundfont(tsf), ds.UNSEEN, 1000)
    tnames = {c.name for c in tseen}
    rows, clips, started = [], [], time.time()
    for target, c in enumerate(seen):
        parts = []
        b = None
        if c.name in tnames:
            try:
                b = ds.render_clips(tsf, replace(c, index=c.index + 1000), n, seed, tmp)
            except ds.AptUssError as exc:
                logging.info("TimGM6mb left out for %s: %s", c.name, exc)
                tnames.discard(c.name)
        if b is not None:
            a = ds.render_clips(fsf, c, n, seed, tmp)
            for k in range(n):
                parts += [(a[k], ds.SOUNDFONT_SOURCE), (b[k], TIM)]
        else:
            parts = [(x, ds.SOUNDFONT_SOURCE) for x in ds.render_clips(fsf, c, 2 * n, seed, tmp)]
        for k, (clip, src) in enumerate(parts):
            rows.append({"filename": f"1-{c.name}-{k:02d}.wav", "fold": 1, "target": target, "category": c.name,
                         "source_package": f"{src.package} {src.version}", "license": src.license,
                         "origin": c.origin(src, version)})
            clips.append(clip)
        logging.info("%d/%d classes (%s%s) %.1f s", target + 1, len(seen), c.name,
                     " +TimGM6mb" if c.name in tnames else "", time.time() - started)
    folder = tmp / ds.SEEN_NAME
    ds._write_part(folder, rows, clips, "esc50.csv", "FluidR3 GM: MIT; TimGM6mb: GPL-2 (see each package's copyright)")
    print("sha256", ds.deterministic_tar_gz(folder, out))
