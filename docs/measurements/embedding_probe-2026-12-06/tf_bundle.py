"""Read a TensorFlow (v2 tensor-bundle) checkpoint without TensorFlow: name -> numpy array."""
import struct
from pathlib import Path

import numpy as np

MAGIC = 0xDB4775248B80FB57
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16, 10: np.bool_}


def _varint(buf, pos):
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def _block(data, offset, size):
    if data[offset + size] != 0:
        raise ValueError("compressed checkpoint index blocks are not supported")
    body = data[offset:offset + size]
    n_restarts = struct.unpack_from("<I", body, len(body) - 4)[0]
    end = len(body) - 4 - 4 * n_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(body, pos)
        unshared, pos = _varint(body, pos)
        vlen, pos = _varint(body, pos)
        key = key[:shared] + body[pos:pos + unshared]
        pos += unshared
        yield key, body[pos:pos + vlen]
        pos += vlen


def _fields(msg):
    pos = 0
    while pos < len(msg):
        tag, pos = _varint(msg, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            val, pos = _varint(msg, pos)
        elif wire == 2:
            n, pos = _varint(msg, pos)
            val, pos = msg[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = struct.unpack_from("<I", msg, pos)[0], pos + 4
        elif wire == 1:
            val, pos = struct.unpack_from("<Q", msg, pos)[0], pos + 8
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")
        yield field, val


def read_checkpoint(prefix):
    index = Path(str(prefix) + ".index").read_bytes()
    if struct.unpack_from("<Q", index, len(index) - 8)[0] != MAGIC:
        raise ValueError(f"{prefix}.index is not a TensorFlow checkpoint index")
    footer = index[-48:]
    _, p = _varint(footer, 0)
    _, p = _varint(footer, p)
    idx_off, p = _varint(footer, p)
    idx_size, p = _varint(footer, p)
    entries = {}
    for _, handle in _block(index, idx_off, idx_size):
        off, q = _varint(handle, 0)
        size, _ = _varint(handle, q)
        for key, value in _block(index, off, size):
            if key:
                entries[key.decode()] = value
    shards = {}
    out = {}
    for name, value in entries.items():
        meta = {"shape": [], "dtype": 1, "shard": 0, "offset": 0, "size": 0}
        for f, v in _fields(value):
            if f == 1:
                meta["dtype"] = v
            elif f == 2:
                for ff, dim in _fields(v):
                    if ff == 2:
                        meta["shape"].append(dict(_fields(dim)).get(1, 0))
            elif f == 3:
                meta["shard"] = v
            elif f == 4:
                meta["offset"] = v
            elif f == 5:
                meta["size"] = v
        if meta["dtype"] not in DTYPES:
            raise ValueError(f"{name}: dtype enum {meta['dtype']} not supported")
        if meta["shard"] not in shards:
            shard_path = Path(f"{prefix}.data-{meta['shard']:05d}-of-00001")
            shards[meta["shard"]] = shard_path.read_bytes()
        raw = shards[meta["shard"]][meta["offset"]:meta["offset"] + meta["size"]]
        out[name] = np.frombuffer(raw, DTYPES[meta["dtype"]]).reshape(meta["shape"]).copy()
    return out


if __name__ == "__main__":
    import sys
    for k, v in sorted(read_checkpoint(sys.argv[1]).items()):
        print(k, v.shape, v.dtype)
