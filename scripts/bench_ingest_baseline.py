"""The scan-ingest baseline of scripts/bench-commands: what `spatialsv ingest scannet` does,
written plainly with pyarrow and Pillow.

For every ScanNet-layout scene below the given folders: read each frame's colour image and
16-bit depth PNG, decode both once (as a validating importer must), parse the pose, and write
one Parquet table of (scene, frame, colour bytes, depth bytes, pose, width, height).

    python3 scripts/bench_ingest_baseline.py SCANS_DIR [SCANS_DIR ...] OUT_DIR
"""

import io
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def scenes(root):
    for dirpath, dirnames, _ in os.walk(root):
        if "color" in dirnames and "pose" in dirnames:
            yield dirpath
            dirnames.clear()


def main():
    *roots, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    cols = {k: [] for k in ("scene", "frame", "color", "depth", "pose", "width", "height")}
    for root in roots:
        for scene in sorted(scenes(root)):
            colour_dir = os.path.join(scene, "color")
            for name in sorted(os.listdir(colour_dir)):
                stem = os.path.splitext(name)[0]
                colour = open(os.path.join(colour_dir, name), "rb").read()
                depth = open(os.path.join(scene, "depth", stem + ".png"), "rb").read()
                img = Image.open(io.BytesIO(colour))
                img.load()
                dep = Image.open(io.BytesIO(depth))
                dep.load()
                pose = [
                    float(v)
                    for v in open(os.path.join(scene, "pose", stem + ".txt")).read().split()
                ]
                cols["scene"].append(os.path.basename(scene))
                cols["frame"].append(int(stem))
                cols["color"].append(colour)
                cols["depth"].append(depth)
                cols["pose"].append(pose)
                cols["width"].append(img.width)
                cols["height"].append(img.height)
    pq.write_table(pa.table(cols), os.path.join(out, "frames.parquet"))


if __name__ == "__main__":
    main()
