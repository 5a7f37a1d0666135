"""Inference quality bars Q4 and Q5, measured side by side in one process.

Q4: tiled prediction of a 2048x2048 image (``predict_image``: tiles with a halo derived from
the receptive field, batched) vs untiled inference of the same image (one ``predict_on_batch``
on the whole image padded to the size multiple, then softmax). Target ratio <= 1.3. The
maximum difference between the two outputs away from the borders is printed as a check.
With ``--memory`` the peak resident memory of an 8192x8192 tiled prediction is measured in a
fresh process (target < 3 GB).

Q5: temporal inference of a 50-frame video at T = 5 with ``mobilenet_mobileunet_lstm``:
per-frame features (and the ConvLSTM input convolution) computed once per frame
(``predict_video``) vs recomputing every window (``reuse_features=False``). Target ratio
<= 0.35. The cached time is split into its per-frame part and its recurrence part: the
recurrence (``T - 1`` recurrent 3x3 convolutions per window, from a zero state at each window's
first frame) cannot be shared between windows, so ``recurrence / recompute`` is a floor of the
ratio whatever the per-frame part costs; its MACs per pixel are printed beside the per-frame
network's.

Run: python benchmarks/inference.py [--size 2048] [--tile 1024] [--frames 50] [--memory]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def best_of(fns, repeats: int) -> list[float]:
    """Smallest wall time of ``repeats`` calls of each function (after one warm-up call each),
    the functions interleaved so that load from other processes hits them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def unet(pools: int, filters: int):
    from dlsuite_plugins.architectures import geometry, params
    from dlsuite_plugins.architectures.unet import build_unet

    prm = params.UNetParams(n_filters=filters, pools=pools)
    model = build_unet(prm, n_classes=2, input_shape=(None, None, 1))
    return model, geometry.pools_multiple(prm), geometry.unet_receptive_field(prm)


def untiled(model, image, multiple):
    """Plain whole-image inference: pad bottom/right to the multiple, one pass, softmax."""
    from dlsuite.inference.tiling import _activate

    h, w = image.shape
    ph, pw = -h % multiple, -w % multiple
    x = np.pad(image, ((0, ph), (0, pw)), mode="reflect")[None, ..., None]
    return _activate(np.asarray(model.predict_on_batch(x)))[0, :h, :w]


def bench_tiling(args) -> None:
    from dlsuite.inference import halo_from_receptive_field, predict_image, tile_grid

    model, multiple, rf = unet(args.pools, args.filters)
    halo = halo_from_receptive_field(rf) if args.halo == "auto" else int(args.halo)
    image = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    (th, tw), n = tile_grid(image.shape, args.tile, halo, multiple)
    t_plain, t_tiled = best_of(
        [lambda: untiled(model, image, multiple),
         lambda: predict_image(model, image, tile_size=args.tile, halo=halo,
                               batch_size=args.batch, size_multiple=multiple)],
        args.repeats)
    a = untiled(model, image, multiple)
    b = predict_image(model, image, tile_size=args.tile, halo=halo, batch_size=args.batch,
                      size_multiple=multiple)
    inner = slice(halo, -halo) if halo else slice(None)
    diff = float(np.abs(a[inner, inner] - b[inner, inner]).max())
    print(f"Q4 tiled vs untiled, {args.size}x{args.size}, unet pools={args.pools} "
          f"filters={args.filters}, receptive field {rf} px -> halo {halo}")
    print(f"   untiled (one pass)          {t_plain:8.3f} s")
    print(f"   tiled ({n} tiles {th}x{tw}, batch {args.batch})  {t_tiled:8.3f} s")
    print(f"   ratio tiled/untiled         {t_tiled / t_plain:8.3f}   (target <= 1.3)")
    print(f"   max |tiled - untiled| inside {diff:.2e}")


def bench_memory(args) -> None:
    code = (
        "import numpy as np, resource, sys; sys.path.insert(0, %r);"
        "from inference import unet; from dlsuite.inference import predict_image, "
        "halo_from_receptive_field;"
        "m, mult, rf = unet(%d, %d);"
        "img = np.random.default_rng(0).random((8192, 8192), dtype=np.float32);"
        "p = predict_image(m, img, tile_size=%d, halo=halo_from_receptive_field(rf), "
        "batch_size=%d, size_multiple=mult);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)"
    ) % (os.path.dirname(os.path.abspath(__file__)), args.pools, args.filters, args.tile,
         args.memory_batch)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    peak = float(proc.stdout.strip().splitlines()[-1])
    print(f"Q4 memory: 8192x8192 tiled prediction (tile {args.tile}, batch {args.memory_batch}) "
          f"peak RSS {peak:6.2f} GB "
          f"(target < 3 GB; {time.perf_counter() - start:.0f} s incl. start-up)")


def bench_temporal(args) -> None:
    from dlsuite.inference import predict_video
    from dlsuite_plugins.architectures import geometry, params
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet_lstm

    T, size = args.time_windows, args.frame_size
    video = np.random.default_rng(1).random((args.frames, size, size), dtype=np.float32)
    print(f"Q5 temporal video, mobilenet_mobileunet_lstm T={T}, {args.frames} frames "
          f"{size}x{size} (configs of reference section 2.2)")
    print(f"   {'config':31s} {'recompute':>10s} {'cached':>10s} {'ratio':>7s}  max |diff|")
    for label, filters, pools, alpha in [("template (16 f, 3 pools, a=.35)", 16, 3, 0.35),
                                         ("config_1 (16 f, 5 pools, a=.35)", 16, 5, 0.35),
                                         ("alpha=1.0 (16 f, 5 pools, a=1)", 16, 5, 1.0)]:
        prm = params.MobileUNetLSTMParams(n_filters=filters, pools=pools, alpha=alpha,
                                          time_windows=T, encoder_weights=None)
        model = build_mobilenet_mobileunet_lstm(prm, n_classes=2, input_shape=(T, size, size, 1))
        kwargs = dict(time_windows=T, tile_size=None, halo=0, batch_size=args.batch,
                      size_multiple=geometry.pools_multiple(prm))
        t_cached, t_windows = best_of(
            [lambda: predict_video(model, video, **kwargs),
             lambda: predict_video(model, video, reuse_features=False, **kwargs)],
            args.repeats)
        diff = float(np.abs(predict_video(model, video, **kwargs)
                            - predict_video(model, video, reuse_features=False, **kwargs)).max())
        t_frames, t_recur = cached_parts(model, video, T, args.batch, args.repeats)
        input_macs, recurrent_macs = lstm_macs(model)
        print(f"   {label:31s} {t_windows:9.3f}s {t_cached:9.3f}s {t_cached / t_windows:7.3f}  "
              f"{diff:.1e}")
        print(f"   {'':31s} cached = per-frame {t_frames:.3f}s + recurrence {t_recur:.3f}s; "
              f"floor recurrence/recompute {t_recur / t_windows:.3f}; MAC/px: per-frame net "
              f"{frame_macs(model):,.0f} + ConvLSTM input conv {input_macs:,.0f} per frame, "
              f"recurrence {(T - 1) * recurrent_macs:,.0f} per window -> MAC ratio floor "
              f"{mac_floor(frame_macs(model) + input_macs, recurrent_macs, T):.3f}")
    print("   (target ratio <= 0.35)")


def cached_parts(model, video, T: int, batch: int, repeats: int) -> tuple[float, float]:
    """Wall time of the two parts of the cached path on the whole video (one tile): the
    per-frame maps of all frames, and the recurrences of all windows."""
    from dlsuite.data.windows import window_indices
    from dlsuite.inference.temporal import _batches, _runner_for

    runner = _runner_for(model, video.shape[1:])
    frames = video[..., None]
    maps = []

    def per_frame():
        maps.clear()
        for ts in _batches(range(len(video)), batch):
            maps.extend(runner.unstack(runner.frames(np.ascontiguousarray(frames[list(ts)]))))

    def recurrences():
        for ts in _batches(range(len(video)), batch):
            runner.windows([[maps[window_indices(t, T)[k]] for t in ts] for k in range(T)])

    per_frame()
    return tuple(best_of([per_frame, recurrences], repeats))


def _conv_macs(layer) -> float:
    """Multiply-accumulates per output pixel of a conv-like layer (0 for other layers)."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k = layer.kernel_size
        return k[0] * k[1] * layer.input.shape[-1] * layer.depth_multiplier
    if isinstance(layer, (keras.layers.SeparableConv2D,)):
        k = layer.kernel_size
        c = layer.input.shape[-1]
        return k[0] * k[1] * c * layer.depth_multiplier + c * layer.depth_multiplier * layer.filters
    if isinstance(layer, keras.layers.Conv2D):  # incl. Conv2DTranspose
        k = layer.kernel_size
        return k[0] * k[1] * layer.input.shape[-1] * layer.filters
    return 0.0


def frame_macs(model) -> float:
    """MACs per input pixel of the per-frame network (each layer weighted by its output
    resolution relative to the input)."""
    from dlsuite.inference.temporal import _find_frame_model

    frame = _find_frame_model(model)[1]
    h = frame.input_shape[1]
    total = 0.0
    for layer in frame.layers:
        macs = _conv_macs(layer)
        if macs:
            total += macs * (layer.output.shape[1] / h) ** 2
    return total


def mac_floor(per_frame: float, recurrent: float, T: int) -> float:
    """Cached / recompute ratio of multiply-accumulates per predicted frame: cached computes
    the per-frame part once and the window's ``T - 1`` recurrent convolutions; recomputing
    computes the per-frame part ``T`` times and the same recurrence."""
    return (per_frame + (T - 1) * recurrent) / (T * per_frame + (T - 1) * recurrent)


def lstm_macs(model) -> tuple[float, float]:
    """MACs per pixel of the ConvLSTM2D's input convolution (input channels to
    ``4 * filters``) and of its recurrent convolution (``filters`` to ``4 * filters``)."""
    import keras

    lstm = [layer for layer in model.layers if isinstance(layer, keras.layers.ConvLSTM2D)][0]
    k = lstm.kernel_size[0] * lstm.kernel_size[1]
    return k * lstm.input.shape[-1] * 4 * lstm.filters, k * lstm.filters * 4 * lstm.filters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=1024, help="tile core size")
    parser.add_argument("--halo", default="auto")
    parser.add_argument("--batch", type=int, default=4, help="tiles / frames per batch")
    parser.add_argument("--memory-batch", type=int, default=2, help="tiles per batch at 8192^2")
    parser.add_argument("--pools", type=int, default=3)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--frame-size", type=int, default=256)
    parser.add_argument("--time-windows", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also measure the 8192^2 peak RSS")
    parser.add_argument("--skip", choices=["tiling", "temporal"], action="append", default=[])
    args = parser.parse_args()
    if "tiling" not in args.skip:
        bench_tiling(args)
    if args.memory:
        bench_memory(args)
    if "temporal" not in args.skip:
        bench_temporal(args)
    print(f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB)")


if __name__ == "__main__":
    main()
