"""Plays an external teacher for `spatialsv label import`: writes, for every clip of a
`spatialsv label export-clips` export, the .npz VGGT would write (depth [S,H,W,1],
depth_conf [S,H,W], extrinsic [S,3,4] camera-from-world in the first camera's frame,
intrinsic [S,3,3], plus the preprocessing applied), made from the synthetic world's hidden
ground truth with known changes: VGGT's resize to width 518 (height rounded to a multiple
of 14) then a centre crop to a square, an unknown global scale, 1% multiplicative depth
noise and a 0.3-degree rotation error per view. Then it spoils some clips on purpose: one
file with a NaN depth, one with a non-rigid extrinsic, and one clip left without a file.

Usage: python3 tests/teacher_import.py EXPORT_DIR GROUNDTRUTH_DIR
Prints one JSON line: {"written": [...], "nan": clip, "not_rigid": clip, "missing": clip,
"scale": s}. Needs: pip install numpy pillow
"""
import glob
import json
import os
import sys

import numpy as np
from PIL import Image

SCALE = 0.37  # teacher units per metre (VGGT's normalisation is unknown to the importer)


def rot(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def main() -> int:
    export, gt_root = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    clips = []
    for m in sorted(glob.glob(os.path.join(export, "manifest*.json"))):
        with open(m) as f:
            clips += json.load(f)["clips"]
    clips.sort(key=lambda c: c["clip_id"])
    assert len(clips) >= 4, f"need at least 4 clips, got {len(clips)}"
    spoiled = {"nan": clips[0]["clip_id"], "not_rigid": clips[1]["clip_id"], "missing": clips[2]["clip_id"]}
    written = []
    for n, clip in enumerate(clips):
        if clip["clip_id"] == spoiled["missing"]:
            continue
        gt = os.path.join(gt_root, clip["scene_id"])
        with open(os.path.join(gt, "intrinsics.txt")) as f:
            fx, fy, cx, cy, w, h = [float(x) for x in f.read().split("\n")[1].split()]
        poses = {}
        with open(os.path.join(gt, "poses.txt")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                v = line.split()
                poses[int(v[0])] = np.array([float(x) for x in v[2:18]]).reshape(4, 4)
        # VGGT "crop" preprocessing: width 518, height scaled and rounded to a multiple of
        # 14; here also cropped to a centred square (what its "pad"-free square input does).
        rw = 518
        rh = int(round(h * rw / w / 14.0)) * 14
        side = min(rw, rh)
        x0, y0 = (rw - side) // 2, (rh - side) // 2
        sx, sy = rw / w, rh / h
        depths, confs, exts, ints = [], [], [], []
        first = poses[clip["frames"][0]["frame_idx"]]
        for fr in clip["frames"]:
            i = fr["frame_idx"]
            d = np.asarray(Image.open(os.path.join(gt, "depth", f"{i}.png")), dtype=np.float64) / 1000.0
            # Nearest-neighbour resize of the true depth to the resized grid, then the crop.
            ys = np.minimum((np.arange(rh) + 0.5) / sy, h - 1).astype(int)
            xs = np.minimum((np.arange(rw) + 0.5) / sx, w - 1).astype(int)
            d = d[ys][:, xs][y0 : y0 + side, x0 : x0 + side]
            d = d * SCALE * (1.0 + 0.01 * rng.standard_normal(d.shape))
            d[d < 0] = 0
            depths.append(d[..., None].astype(np.float32))
            confs.append((1.0 + np.exp(rng.standard_normal(d.shape))).astype(np.float32))
            # Camera from the first camera's frame, translation in teacher units.
            e = np.linalg.inv(poses[i]) @ first
            e[:3, :3] = rot(rng.standard_normal(3), 0.3) @ e[:3, :3]
            e[:3, 3] *= SCALE
            exts.append(e[:3, :4])
            ints.append(np.array([[fx * sx, 0, cx * sx - x0], [0, fy * sy, cy * sy - y0], [0, 0, 1]]))
        arrays = {
            "depth": np.stack(depths),
            "depth_conf": np.stack(confs),
            "extrinsic": np.stack(exts).astype(np.float32),
            "intrinsic": np.stack(ints).astype(np.float32),
            "frame_idx": np.array([f["frame_idx"] for f in clip["frames"]], dtype=np.int64),
            "preprocess_resize": np.array([rw, rh], dtype=np.float64),
            "preprocess_offset": np.array([x0, y0], dtype=np.float64),
            "world_points": np.zeros((1, 1, 1, 3), np.float32),  # ignored by the importer
        }
        if clip["clip_id"] == spoiled["nan"]:
            arrays["depth"][0, 3, 3, 0] = np.nan
        if clip["clip_id"] == spoiled["not_rigid"]:
            arrays["extrinsic"][-1, :3, :3] *= 1.2
        path = os.path.join(export, clip["labels"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            # Both ways numpy writes .npz: stored and deflated members.
            (np.savez_compressed if n % 2 else np.savez)(f, **arrays)
        written.append(clip["clip_id"])
    print(json.dumps({"written": written, **spoiled, "scale": SCALE}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
