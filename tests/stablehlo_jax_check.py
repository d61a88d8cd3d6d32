#!/usr/bin/env python3
"""Feed ryft's StableHLO for every golden program to JAX's own compiler.

Independent of ryft's PJRT code: for each case in tests/golden/*.golden the
IR is written to a file, `ryft export FILE --format stablehlo` turns it into
MLIR text, and JAX parses it (jax's MLIR bindings) and compiles it with its
XLA CPU client. Prints how many were accepted and the first failures.

    /work/jaxenv/bin/python tests/stablehlo_jax_check.py [--ryft build/ryft] [--emit CMD]

--emit CMD: a command that prints the module for an IR file given as its
last argument (default: "<ryft> export --format stablehlo"). Not run in CI.
"""
import argparse, glob, os, shlex, subprocess, sys, tempfile

def cases(root):
    for f in sorted(glob.glob(os.path.join(root, "tests", "golden", "*.golden"))):
        lines = open(f).read().split("\n")
        i = 0
        while i < len(lines):
            if lines[i].startswith("case "):
                name = lines[i][5:].strip()
                j = lines.index("ir", i) + 1
                k = lines.index("end_ir", j)
                yield name, "\n".join(lines[j:k]) + "\n"
                i = k
            i += 1

def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--ryft", default=os.path.join(root, "build", "ryft"))
    ap.add_argument("--emit", default=None)
    ap.add_argument("--parse-only", action="store_true")
    args = ap.parse_args()
    emit = shlex.split(args.emit) if args.emit else [args.ryft, "export", "--format", "stablehlo"]

    import jax
    from jax._src.interpreters import mlir
    from jax._src.lib.mlir import ir
    from jax._src import compiler, xla_bridge
    from jax._src.lib import xla_client as xc
    ctx = mlir.make_ir_context()
    backend = xla_bridge.get_backend("cpu")

    total = ok = 0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases(root):
            total += 1
            path = os.path.join(tmp, "case.ir")
            open(path, "w").write(text)
            r = subprocess.run(emit + [path], capture_output=True, text=True)
            if r.returncode != 0:
                failures.append((name, "emit: " + r.stderr.strip()[:300]))
                continue
            try:
                with ctx:
                    module = ir.Module.parse(r.stdout)
                    if not args.parse_only:
                        compiler.backend_compile_and_load(backend, module, xc.DeviceList(tuple(jax.devices("cpu")[:1])),
                                                          compiler.get_compile_options(1, 1), [])
                ok += 1
            except Exception as e:  # report, keep going
                failures.append((name, str(e).strip()[:300]))
    what = "parsed" if args.parse_only else "parsed and compiled"
    print(f"JAX {jax.__version__}: {ok}/{total} golden programs {what} by JAX's StableHLO/XLA")
    for name, why in failures[:20]:
        print(f"  FAIL {name}: {why}")
    return 0 if ok == total else 1

if __name__ == "__main__":
    sys.exit(main())
