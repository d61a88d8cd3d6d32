"""Write promotion.txt: jnp.promote_types for every pair of ryft's dtypes.

Regenerate with JAX from the package index (not needed in CI):
    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax
    /tmp/jaxenv/bin/python tests/golden/gen_promotion.py
"""
import os
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)
NAMES = {"bool": jnp.bool_, "i8": jnp.int8, "i16": jnp.int16, "i32": jnp.int32, "i64": jnp.int64,
         "u8": jnp.uint8, "u16": jnp.uint16, "u32": jnp.uint32, "u64": jnp.uint64, "f16": jnp.float16, "bf16": jnp.bfloat16,
         "f32": jnp.float32, "f64": jnp.float64}
BACK = {jnp.dtype(v): k for k, v in NAMES.items()}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promotion.txt")
with open(out, "w") as f:
    f.write("# a b promote(a,b), from jnp.promote_types (jax %s); see gen_promotion.py\n" % jax.__version__)
    for a, ta in NAMES.items():
        for b, tb in NAMES.items():
            r = jnp.promote_types(ta, tb)
            f.write("%s %s %s\n" % (a, b, BACK.get(jnp.dtype(r), str(r))))
