"""Architecture throughput on this CPU and quality bar Q3, measured side by side in one process.

For every registered architecture at its default parameters (``encoder_weights`` is None by
default; temporal models use their default ``time_windows``):

* training images/s at 256x256: ``train_on_batch`` (Adam, sparse CCE from logits, as training
  compiles it) on a fixed batch of 4, after warm-up steps; temporal models count windows/s
  (one window = ``time_windows`` frames and one predicted frame);
* inference s/image at 512x512: ``predict_on_batch`` of one image, best of a few; for temporal
  models s/window (``time_windows`` frames in, the last frame's prediction out: the cost of one
  output frame when every window is recomputed).

Q3 (``unet`` only): FLOPs of one training step are counted analytically from the model's
Conv2D / Conv2DTranspose / SeparableConv2D / DepthwiseConv2D layers (kernel size, channels and
output size; bias, activations, pooling and upsampling are not counted; for the default unet
at 256x256 this agrees within 0.2 % with ``tf.compat.v1.profiler``'s float-op count of the
forward graph), times 3 for forward + backward (gradients w.r.t. inputs and weights each cost
about one forward pass). The float32 matmul peak is measured in the same run
(``tf.linalg.matmul`` of two NxN float32 matrices inside a ``tf.function``, 2*N**3 FLOPs).
Training steps and matmul calls alternate, best of each, and the fraction is reported twice:
by wall time (FLOP/s) and by process CPU time (FLOP per CPU-second), the latter being robust
to other processes competing for the cores. Target: at least 60 %.

Run: python benchmarks/models.py [--quick] [--only NAME ...] [--batch 4] [--steps 8]
``--quick``: a fast smoke run (unet and unet_lstm unless ``--only``; 64 px, two timed steps,
small matmul) that still prints the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

QUICK = ("unet", "unet_lstm")  # --quick: one 2D and one temporal model
FLOP_LAYERS = ("Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D")


def conv_flops(model) -> int:
    """Forward FLOPs (2 per multiply-add) of the convolution layers of a model built with a
    static input size and batch 1, nested models included."""
    total = 0
    for layer in _layers(model):
        kind = type(layer).__name__
        if kind not in FLOP_LAYERS:
            continue
        out_h, out_w = layer.output.shape[-3:-1]
        kh, kw = layer.kernel_size
        if kind == "Conv2D":
            cin = layer.kernel.shape[2]  # per group
            total += 2 * kh * kw * cin * layer.filters * out_h * out_w
        elif kind == "Conv2DTranspose":
            in_h, in_w = layer.input.shape[-3:-1]
            total += 2 * kh * kw * layer.kernel.shape[3] * layer.filters * in_h * in_w
        else:  # depthwise (+ pointwise for separable)
            cin = layer.depthwise_kernel.shape[2] if kind == "SeparableConv2D" else layer.kernel.shape[2]
            mult = layer.depth_multiplier
            total += 2 * kh * kw * cin * mult * out_h * out_w
            if kind == "SeparableConv2D":
                total += 2 * cin * mult * layer.filters * out_h * out_w
    return total


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


def matmul_step(n: int):
    """A function running four float32 NxN @ NxN products (one ``tf.function`` call, traced
    here) and returning their FLOPs, ``4 * 2 * n**3``."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)

    @tf.function
    def four(a, b):
        acc = tf.zeros((), tf.float32)
        for _ in range(4):
            acc += tf.reduce_sum(tf.linalg.matmul(a, b)[:1, :1])
            a = a + 1e-6  # a different product each time (no common-subexpression reuse)
        return acc

    def run() -> int:
        four(a, b).numpy()
        return 4 * 2 * n**3

    run()
    return run


def _compile(model):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _input_shape(spec, params, side: int):
    frame = (side, side, 1)
    return (params.time_windows, *frame) if spec.temporal else frame


def _batch(spec, params, batch: int, side: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *_input_shape(spec, params, side)), dtype=np.float32)
    y = (rng.random((batch, side, side, 1)) > 0.5).astype(np.float32)
    return x, y


def bench_training(entry, params, side: int, batch: int, warmup: int, steps: int):
    """Per-step times (s) of ``train_on_batch`` at ``side`` px, and the built model."""
    import keras

    model = entry.load()(params, n_classes=2, input_shape=_input_shape(entry.spec, params, side))
    if len(model.outputs) > 1:
        model = keras.Model(model.inputs, model.outputs[0])
    _compile(model)
    x, y = _batch(entry.spec, params, batch, side)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return times, model


def bench_inference(entry, params, side: int, repeats: int) -> float:
    """Best seconds of ``predict_on_batch`` of one image (or window) at ``side`` px."""
    model = entry.load()(params, n_classes=2, input_shape=_input_shape(entry.spec, params, side))
    x, _ = _batch(entry.spec, params, 1, side, seed=1)
    model.predict_on_batch(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        best = min(best, time.perf_counter() - start)
    return best


def _timed(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def q3(model, x, y, n: int, rounds: int) -> dict:
    """Q3 side by side: ``rounds`` alternations of one timed training step (``train_on_batch``
    of the compiled, warmed-up ``model``, built for a static input size, on ``x, y``) and one
    timed matmul call; best of each, by wall time and by process CPU time (FLOPs per CPU-second
    is insensitive to other processes competing for the cores; wall time is what a user sees
    on an idle machine).

    Returns a dict: ``flops`` of a step, ``step_s`` best wall, ``wall`` (achieved, peak) FLOP/s,
    ``cpu`` (achieved, peak) FLOP per CPU-second."""
    step_flops = 3 * conv_flops(model) * len(x)
    matmul = matmul_step(n)
    mm_flops = matmul()
    steps, mms = [], []
    for _ in range(rounds):
        steps.append(_timed(lambda: model.train_on_batch(x, y)))
        mms.append(_timed(matmul))
    best = [min(t[i] for t in steps) for i in (0, 1)]
    best_mm = [min(t[i] for t in mms) for i in (0, 1)]
    return {"flops": step_flops, "step_s": best[0],
            "wall": (step_flops / best[0], mm_flops / best_mm[0]),
            "cpu": (step_flops / best[1], mm_flops / best_mm[1])}


def main(argv=None) -> None:
    """Measure and print one table (and the Q3 line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run")
    parser.add_argument("--only", nargs="*", help="architecture names (default: all)")
    parser.add_argument("--batch", type=int, default=4, help="training batch size")
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--infer-size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference calls")
    parser.add_argument("--matmul", type=int, default=2048, help="N of the NxN matmul peak")
    parser.add_argument("--q3-rounds", type=int, default=10,
                        help="alternations of a unet training step and a matmul call (Q3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="TF intra-op threads (0: TensorFlow's default)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.infer_size, args.warmup, args.steps = 64, 64, 1, 2
        args.repeats, args.matmul, args.batch, args.q3_rounds = 1, 256, 2, 2
        args.only = args.only or list(QUICK)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices: each model is traced on purpose

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from dlsuite.registry import get_registry

    entries = [e for e in get_registry().entries("architectures")
               if not args.only or e.name in args.only]
    rows, q3_line = [], None
    for entry in entries:
        params = entry.spec.params()
        steps, model = bench_training(entry, params, args.train_size, args.batch, args.warmup,
                                      args.steps)
        per_s = args.batch / statistics.median(steps)
        infer = bench_inference(entry, params, args.infer_size, args.repeats)
        unit = f"window(T={params.time_windows})" if entry.spec.temporal else "image"
        row = [entry.name, unit, f"{per_s:.2f}", f"{infer:.3f}", "-"]
        if entry.name == "unet":
            x, y = _batch(entry.spec, params, args.batch, args.train_size)
            res = q3(model, x, y, args.matmul, args.q3_rounds)
            (achieved, peak), (cpu_achieved, cpu_peak) = res["wall"], res["cpu"]
            row[-1] = f"{100 * achieved / peak:.0f}% wall, {100 * cpu_achieved / cpu_peak:.0f}% cpu"
            q3_line = (
                f"Q3 unet training step {args.train_size}x{args.train_size} batch {args.batch}: "
                f"{res['flops'] / 1e9:.2f} GFLOP (3x forward conv FLOPs, counted analytically)\n"
                f"   wall: best step {res['step_s'] * 1e3:.0f} ms = {achieved / 1e9:.1f} GFLOP/s; "
                f"float32 matmul {args.matmul}^2 {peak / 1e9:.1f} GFLOP/s -> "
                f"{100 * achieved / peak:.0f}%\n"
                f"   per CPU-second: {cpu_achieved / 1e9:.1f} vs {cpu_peak / 1e9:.1f} GFLOP -> "
                f"{100 * cpu_achieved / cpu_peak:.0f}%   (alternated, best of {args.q3_rounds}; "
                f"target >= 60%)")
        del model
        rows.append(row)
        print(f"  measured {entry.name}", flush=True)

    head = ["architecture", "unit", f"train units/s @{args.train_size}",
            f"infer s/unit @{args.infer_size}", "Q3 FLOP/s vs peak"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f"Architectures at default settings, training batch {args.batch}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}"
          f" on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other processes "
          f"slow the wall-time figures down)")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if q3_line:
        print(q3_line)


if __name__ == "__main__":
    main()
