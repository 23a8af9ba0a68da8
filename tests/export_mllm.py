"""Reads a `spatialsv export-mllm` export the way a PyTorch trainer would (json, numpy,
safetensors) and checks it: one <image> tag per image and every image file present; each
sample's 3D targets with the documented shapes, dtypes and units (metres, unit ray
directions, the first view's pose the identity, points of view 1 lying at their depth along
z); answers equal to the dataset's `qa` table; a Hugging Face tokenizer.json mapping words to
ids. Usage: python3 tests/export_mllm.py EXPORT_DIR FORMAT QA_CSV (qa_id,answer per line).
Prints `ok N samples` and exits 0, or names the first problem and exits 1.
Needs: pip install numpy safetensors
"""
import csv
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def fail(msg: str) -> int:
    print(msg)
    return 1


def main() -> int:
    root, fmt, qa_csv = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(qa_csv) as f:
        answers = {row["qa_id"]: row["answer"] for row in csv.DictReader(f)}
    with open(os.path.join(root, f"{fmt}.json")) as f:
        samples = json.load(f)
    seen = 0
    for s in samples:
        images = s["image"] if fmt == "llava" else s["images"]
        if s["sample_kind"] == "qa":
            if fmt == "llava":
                human, gpt = s["conversations"][0]["value"], s["conversations"][1]["value"]
            else:
                human, gpt = s["messages"][0]["content"], s["messages"][1]["content"]
            if human.count("<image>") != len(images):
                return fail(f"{s['id']}: {human.count('<image>')} <image> tags for {len(images)} images")
            if answers.get(s["id"]) != gpt:
                return fail(f"{s['id']}: answer {gpt!r}, the qa table says {answers.get(s['id'])!r}")
        for im in images:
            if not os.path.exists(os.path.join(root, im)):
                return fail(f"missing image {im}")
        t = load_file(os.path.join(root, s["targets_3d"]))
        v = len(images)
        depth, keep = t["depth"], t["keep_mask"]
        if depth.dtype != np.float32 or keep.dtype != np.uint8 or depth.shape[0] != v:
            return fail(f"{s['id']}: depth {depth.dtype} {depth.shape}, keep {keep.dtype}")
        h, w = depth.shape[1:]
        shapes = {"confidence": (v, h, w), "rays": (v, 6, h, w), "points": (v, 3, h, w),
                  "intrinsics": (v, 4), "poses": (v, 4, 4)}
        for k, shape in shapes.items():
            if t[k].shape != shape:
                return fail(f"{s['id']}: {k} has shape {t[k].shape}, expected {shape}")
        if not np.allclose(t["poses"][0], np.eye(4), atol=1e-9):
            return fail(f"{s['id']}: the first view's pose is not the identity")
        norms = np.linalg.norm(t["rays"][:, 3:], axis=1)
        if not np.allclose(norms, 1.0, atol=1e-4):
            return fail(f"{s['id']}: ray directions are not unit vectors")
        valid = keep > 0
        if s["sample_kind"] == "qa":
            d = depth[valid]
            if d.size == 0 or d.min() < 0.05 or d.max() > 50.0:
                return fail(f"{s['id']}: depth {d.min() if d.size else None}..{d.max() if d.size else None} is not metres of a room")
            z = t["points"][0, 2][valid[0]]
            if not np.allclose(z, depth[0][valid[0]], rtol=1e-4, atol=1e-4):
                return fail(f"{s['id']}: view 1's points do not lie at their depth")
        seen += 1
    with open(os.path.join(root, "tokenizer.json")) as f:
        tok = json.load(f)
    if tok["model"]["type"] != "WordLevel" or "<eos>" not in tok["model"]["vocab"]:
        return fail("tokenizer.json is not a WordLevel tokenizer with the special tokens")
    print(f"ok {seen} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
