#!/usr/bin/env python3
"""Runs VGGT over a `spatialsv label export-clips` export and writes, for every clip, the
.npz that `spatialsv label import` reads (docs/labeling.md, "Bring your own teacher").

    spatialsv label export-clips --dataset ds --out clips/
    python3 scripts/teacher_vggt.py clips/ [--model facebook/VGGT-1B] [--mode crop|pad]
    spatialsv label import --from clips/ --dataset ds --teacher-name vggt-1b

Needs a CUDA GPU (or patience), PyTorch, and the public `vggt` package with its weights,
which you install (https://github.com/facebookresearch/vggt: `pip install -e .` of a checkout;
the weights download from Hugging Face on first use). Not run by spatialsv's tests (they
need neither a GPU nor VGGT: tests/teacher_import.py writes the same layout from ground
truth).

Per clip (S frames) it writes `labels/<clip>.npz` with what VGGT returns for the clip's
frames in the manifest's order:
  depth [S,H,W,1], depth_conf [S,H,W]            (VGGT's depth head, its units)
  extrinsic [S,3,4]                              (camera from world, OpenCV, world = first camera)
  intrinsic [S,3,3]                              (pixels of the H x W network input)
  world_points [S,H,W,3], world_points_conf [S,H,W]   (kept for you; import ignores them)
  frame_idx [S]                                  (the manifest's frames)
  preprocess_resize [2] = (W', H')               (the size VGGT resized the stored image to)
  preprocess_offset [2] = (x0, y0)               (network pixel (u, v) = resized pixel (u + x0, v + y0):
                                                   positive after a crop, negative after padding)
The preprocessing is recomputed here with exactly the arithmetic of
vggt.utils.load_fn.load_and_preprocess_images (width 518, height rounded to a multiple of
14, centre crop to 518 in "crop" mode; longest side 518 and centre padding to 518x518 in
"pad" mode), so labels map back to the stored pixels. Clips already written are skipped
(delete a file to redo it); --max-frames splits nothing: a clip longer than it is skipped
with a message (VGGT's memory grows with S).
"""
import argparse
import json
import os
import sys


def vggt_geometry(width: int, height: int, mode: str, target: int = 518):
    """(resized W', H'), (x0, y0) of load_and_preprocess_images for one image."""
    if mode == "pad":
        if width >= height:
            new_w = target
            new_h = round(height * (new_w / width) / 14) * 14
        else:
            new_h = target
            new_w = round(width * (new_h / height) / 14) * 14
        pad_top, pad_left = (target - new_h) // 2, (target - new_w) // 2
        return (new_w, new_h), (-pad_left, -pad_top)
    new_w = target
    new_h = round(height * (new_w / width) / 14) * 14
    start_y = (new_h - target) // 2 if new_h > target else 0
    return (new_w, new_h), (0, start_y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="directory written by `spatialsv label export-clips`")
    ap.add_argument("--model", default="facebook/VGGT-1B")
    ap.add_argument("--mode", choices=["crop", "pad"], default="crop")
    ap.add_argument("--max-frames", type=int, default=64)
    args = ap.parse_args()

    import numpy as np
    import torch
    from vggt.models.vggt import VGGT
    from vggt.utils.load_fn import load_and_preprocess_images
    from vggt.utils.pose_enc import pose_encoding_to_extri_intri

    clips = []
    for name in sorted(os.listdir(args.export)):
        if name.startswith("manifest") and name.endswith(".json"):
            with open(os.path.join(args.export, name)) as f:
                m = json.load(f)
            if m.get("format") != "spatialsv-clips/1":
                print(f"{name}: not a spatialsv clip manifest", file=sys.stderr)
                return 2
            clips += m["clips"]
    if not clips:
        print(f"{args.export}: no manifest.json (run `spatialsv label export-clips`)", file=sys.stderr)
        return 2

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.get_device_capability()[0] >= 8 else torch.float16
    model = VGGT.from_pretrained(args.model).to(device).eval()
    done = skipped = 0
    for i, clip in enumerate(clips):
        out = os.path.join(args.export, clip["labels"])
        if os.path.exists(out):
            skipped += 1
            continue
        frames = clip["frames"]
        if len(frames) > args.max_frames:
            print(f"{clip['clip_id']}: {len(frames)} frames > --max-frames {args.max_frames}; skipped", file=sys.stderr)
            continue
        sizes = {(f["width"], f["height"]) for f in frames}
        if len(sizes) != 1:
            print(f"{clip['clip_id']}: frames of different sizes {sizes}; skipped", file=sys.stderr)
            continue
        (w, h), = sizes
        resize, offset = vggt_geometry(w, h, args.mode)
        paths = [os.path.join(args.export, f["file"]) for f in frames]
        images = load_and_preprocess_images(paths, mode=args.mode).to(device)
        with torch.no_grad():
            with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
                pred = model(images)
        extrinsic, intrinsic = pose_encoding_to_extri_intri(pred["pose_enc"], images.shape[-2:])
        arrays = {
            "depth": pred["depth"][0].float().cpu().numpy(),
            "depth_conf": pred["depth_conf"][0].float().cpu().numpy(),
            "extrinsic": extrinsic[0].float().cpu().numpy(),
            "intrinsic": intrinsic[0].float().cpu().numpy(),
            "world_points": pred["world_points"][0].float().cpu().numpy(),
            "world_points_conf": pred["world_points_conf"][0].float().cpu().numpy(),
            "frame_idx": np.array([f["frame_idx"] for f in frames], dtype=np.int64),
            "preprocess_resize": np.array(resize, dtype=np.float64),
            "preprocess_offset": np.array(offset, dtype=np.float64),
        }
        hn, wn = arrays["depth"].shape[1:3]
        if (wn, hn) != (min(resize[0], 518), min(resize[1], 518)) and args.mode == "crop":
            print(f"{clip['clip_id']}: VGGT returned {wn}x{hn}, expected {resize} (preprocessing changed?)", file=sys.stderr)
            return 1
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, out)
        done += 1
        print(f"[{i + 1}/{len(clips)}] {clip['clip_id']}: {len(frames)} frames", flush=True)
    print(f"{done} clips labelled, {skipped} already there; next: spatialsv label import --from {args.export} --dataset DS --teacher-name vggt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
