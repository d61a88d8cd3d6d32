"""Fashion-MNIST IDX reader shared by the peer training benchmarks (the same
gz files ryft reads: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz)."""
import gzip, os, struct
import numpy as np

DATA = os.environ.get("RYFT_DATA", "/usr/share/datasets/fashion-mnist")


def _idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, raw[4:4 + 4 * rank])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(split="train"):
    base = os.path.join(DATA, f"{split}-")
    ext = ".gz" if os.path.exists(base + "images-idx3-ubyte.gz") else ""
    return _idx(base + "images-idx3-ubyte" + ext), _idx(base + "labels-idx1-ubyte" + ext)


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
