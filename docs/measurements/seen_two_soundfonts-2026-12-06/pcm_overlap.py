"""Does any 32-sample run of TimGM6mb's PCM appear bit-for-bit in FluidR3_GM's? (copied recordings)"""
import struct, sys, numpy as np, time
def smpl(path):
    d = open(path, 'rb').read(); pos = 12
    while pos < len(d):
        cid, size = d[pos:pos+4], struct.unpack_from('<I', d, pos+4)[0]
        if cid == b'LIST' and d[pos+8:pos+12] == b'sdta':
            p = pos + 12
            while p < pos + 8 + size:
                c, s = d[p:p+4], struct.unpack_from('<I', d, p+4)[0]
                if c == b'smpl':
                    return np.frombuffer(d, '<i2', s // 2, p + 8).astype(np.int64)
                p += 8 + s + (s & 1)
        pos += 8 + size + (size & 1)
def hashes(x, w=32):
    n = len(x) - w + 1; acc = np.zeros(n, np.uint64); P = np.uint64(1000003)
    for j in range(w):
        acc = acc * P + (x[j:j+n] + 40000).astype(np.uint64)
    loud = np.lib.stride_tricks.sliding_window_view(np.abs(x), w).max(axis=1) >= 256
    return acc[loud]
t = time.time()
a = smpl(sys.argv[1]); b = smpl(sys.argv[2])
print('samples', len(a), len(b))
ha = np.unique(hashes(a)); hb = hashes(b)
hit = np.isin(hb, ha)
print(f'loud 32-sample windows of {sys.argv[2]}: {len(hb)}, found in {sys.argv[1]}: {int(hit.sum())} ({time.time()-t:.0f} s)')
