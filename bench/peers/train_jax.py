"""JAX + Optax side of bench/train_epoch.sh: the model of `ryft train` (conv3x3(16)
-relu-maxpool2-conv3x3(32)-relu-maxpool2-dense128-relu-dense10, NHWC, SAME
padding, LeCun-normal weights, zero biases), batch 128, Adam with linear warmup
over 2% of the steps + cosine decay (peak 3e-3), one jitted train step with
donated parameters and optimizer state. Warm-up: WARMUP_STEPS steps (compile +
first calls), then one full timed epoch (60000 // 128 = 468 steps, reshuffled
on the host each epoch, loss read back every step as ryft does).
Prints `RESULT jax <seconds per epoch> <peak RSS MB> <mean loss>`."""
import os, sys, time

threads = int(os.environ.get("RYFT_NUM_THREADS", "2"))
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
os.environ.setdefault("OMP_NUM_THREADS", str(threads))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
import jax, jax.numpy as jnp, optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist

BATCH, LR, WARMUP_STEPS = 128, 3e-3, int(os.environ.get("WARMUP_STEPS", "20"))


def init(key):
    lecun = jax.nn.initializers.lecun_normal()
    shapes = {"conv1": (3, 3, 1, 16), "conv2": (3, 3, 16, 32), "fc1": (7 * 7 * 32, 128), "fc2": (128, 10)}
    keys = jax.random.split(key, len(shapes))
    return {n: {"w": lecun(k, s, jnp.float32), "b": jnp.zeros(s[-1], jnp.float32)} for k, (n, s) in zip(keys, shapes.items())}


def conv(x, p):
    y = jax.lax.conv_general_dilated(x, p["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + p["b"]


def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def apply(p, x):
    x = pool(jax.nn.relu(conv(x, p["conv1"])))
    x = pool(jax.nn.relu(conv(x, p["conv2"])))
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ p["fc1"]["w"] + p["fc1"]["b"])
    return x @ p["fc2"]["w"] + p["fc2"]["b"]


def loss_fn(p, img, lab):
    x = (img.astype(jnp.float32) / 255.0)[..., None]
    return optax.softmax_cross_entropy_with_integer_labels(apply(p, x), lab.astype(jnp.int32)).mean()


def main():
    imgs, labs = fmnist.load("train")
    steps = len(imgs) // BATCH
    sched = optax.warmup_cosine_decay_schedule(0.0, LR, steps // 50, steps, 0.0)
    opt = optax.adam(sched)

    def step_impl(p, s, img, lab):
        loss, g = jax.value_and_grad(loss_fn)(p, img, lab)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    step = jax.jit(step_impl, donate_argnums=(0, 1))
    params = init(jax.random.PRNGKey(0))
    state = opt.init(params)
    rng = np.random.default_rng(0)

    def run(n):
        nonlocal params, state
        perm = rng.permutation(len(imgs))
        total = 0.0
        for i in range(n):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            params, state, loss = step(params, state, imgs[idx], labs[idx])
            total += float(loss)
        return total / n

    t0 = time.perf_counter()
    run(WARMUP_STEPS)
    tw = time.perf_counter() - t0
    t0 = time.perf_counter()
    mean_loss = run(steps)
    t = time.perf_counter() - t0
    print(f"jax {jax.__version__} optax {optax.__version__}, devices {jax.devices()}, warm-up {WARMUP_STEPS} steps {tw:.2f} s", file=sys.stderr)
    print(f"RESULT jax {t:.3f} {fmnist.peak_rss_mb():.1f} {mean_loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
