"""JAX (jit, XLA:CPU) and NumPy side of bench/run.sh: the same workloads as
bench/ryft_bench.c, printing `RESULT <workload> <system> <value> <unit>`.
Thread count: RYFT_NUM_THREADS (set by run.sh for every system)."""
import os, sys, time, tempfile

threads = int(os.environ.get("RYFT_NUM_THREADS", "2"))
os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
os.environ.setdefault("OMP_NUM_THREADS", str(threads))

import numpy as np


def best(fn, reps=10):
    fn()
    fn()
    t = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def out(w, sysname, v, unit):
    print(f"RESULT {w} {sysname} {v:.6g} {unit}", flush=True)


def workloads(sysname, jit, block, xp, special_erf):
    rng = np.random.default_rng(0)
    x16 = xp.asarray(rng.standard_normal(16777216, dtype=np.float32))
    a, b = xp.float32(1.1), xp.float32(0.2)

    def gelu(x, a, b):
        y = x * a + b
        return 0.5 * y * (1 + special_erf(y * np.float32(0.70710678)))

    f = jit(gelu)
    t = best(lambda: block(f(x16, a, b)))
    out("gelu-16M", sysname, 2 * 4 * 16777216 / t / 1e9, "GB/s")
    out("gelu-16M-ms", sysname, t * 1e3, "ms")

    x = xp.asarray(rng.standard_normal((4096, 1024), dtype=np.float32))

    def softmax(x):
        m = x.max(axis=1, keepdims=True)
        e = xp.exp(x - m)
        return e / e.sum(axis=1, keepdims=True)

    def layernorm(x):
        mu = x.mean(axis=1, keepdims=True)
        c = x - mu
        var = (c * c).mean(axis=1, keepdims=True)
        return c / xp.sqrt(var + np.float32(1e-5))

    for name, fn in (("softmax-4096x1024", softmax), ("layernorm-4096x1024", layernorm)):
        g = jit(fn)
        t = best(lambda: block(g(x)))
        out(name, sysname, 2 * 4 * 4096 * 1024 / t / 1e9, "GB/s")
        out(name + "-ms", sysname, t * 1e3, "ms")

    for name, (m, n, k) in (("sgemm-1024^3", (1024, 1024, 1024)), ("sgemm-512x512x2048", (512, 512, 2048))):
        A = xp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        B = xp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        g = jit(lambda p, q: p @ q)
        t = best(lambda: block(g(A, B)))
        out(name, sysname, 2 * m * n * k / t / 1e9, "GFLOP/s")
        out(name + "-ms", sysname, t * 1e3, "ms")

    p4, q4 = xp.asarray(np.ones(4, np.float32)), xp.asarray(np.ones(4, np.float32))
    g = jit(lambda p, q: p + q)
    block(g(p4, q4))
    n = 20000
    tb = 1e30
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            r = g(p4, q4)
        block(r)
        tb = min(tb, (time.perf_counter() - t0) / n)
    out("tiny-call", sysname, tb * 1e6, "us")
    return softmax, layernorm, gelu


def main():
    which = sys.argv[1:] or ["jax", "numpy"]
    if "numpy" in which:
        import math
        verf = np.vectorize(math.erf, otypes=[np.float32])
        try:
            from scipy.special import erf as serf  # not required
            verf = serf
        except Exception:
            pass
        workloads("numpy", lambda f: f, lambda r: r, np, verf)
    if "jax" in which:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import erf
        softmax, layernorm, gelu = workloads("jax", jax.jit, lambda r: r.block_until_ready(), jnp, erf)
        # cold compile (new cache dir, fresh function objects) and warm (in-memory cache hit)
        x = jnp.ones((4096, 1024), jnp.float32)
        for name, fn in (("softmax", softmax), ("layernorm", layernorm)):
            g = jax.jit(lambda v, fn=fn: fn(v))
            t0 = time.perf_counter()
            g.lower(x).compile()
            out(f"compile-cold-{name}", "jax", (time.perf_counter() - t0) * 1e3, "ms")
            t0 = time.perf_counter()
            g(x).block_until_ready()
            g(x).block_until_ready()
            t0 = time.perf_counter()
            g(x)  # dispatch with a warm cache
            out(f"compile-warm-{name}", "jax", (time.perf_counter() - t0) * 1e3, "ms")


if __name__ == "__main__":
    main()
