#!/usr/bin/env python3
"""Golden fixtures for the burn port of Depth Anything 3 (`da3/`, tests in `da3/tests/`).

Builds tiny random-weight DA3 networks with the reference implementation (seeded, two
structures), saves each as a checkpoint folder (`config.json` + `model.safetensors`, the key
names `DepthAnything3.save_pretrained` writes: `model.` + the network's state dict), and
records inputs, outputs and intermediates for 1, 2 and 3 views, the camera-conditioned path,
the reference's preprocessing of committed real photos, and the reference's `inference` on
them. Also writes the structure manifests (parameter name -> shape) of the full-size SMALL
and BASE configs (and the other presets), which need no weights.

Pinned environment (nothing else is needed; CI never runs this):

    python3 -m venv venv && venv/bin/pip install torch==2.15.0 torchvision==0.29.2 \
        numpy==1.26.4 einops==0.8.2 omegaconf==2.4.0 addict==2.4.0 safetensors==0.8.0 \
        pillow==13.0.0 opencv-python-headless==4.11.0.86 huggingface_hub==2.5.0 imageio==2.37.0 blake3==1.0.8
    venv/bin/pip install --no-deps depth-anything-3==0.1.1
    venv/bin/python scripts/da3_goldens.py da3/tests/fixtures

The reference's exporter (`depth_anything_3.utils.export`, moviepy and open3d) and its pose
alignment (`utils.pose_align`, evo) are replaced by empty modules before `depth_anything_3.api`
is imported: inference without given poses and without export calls neither. `inference` is run with autocast off (float32): on a machine without CUDA the
reference would autocast to float16, which is not what a GPU user gets either.
"""

import json
import os
import sys
import types

for mod, attrs in (("export", ["export"]),
                   ("pose_align", ["align_poses_umeyama", "batch_align_poses_umeyama"])):
    stub = types.ModuleType(f"depth_anything_3.utils.{mod}")
    for attr in attrs:
        setattr(stub, attr, None)
    sys.modules[f"depth_anything_3.utils.{mod}"] = stub

import blake3  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file, save_model  # noqa: E402

import depth_anything_3.model.dinov2.vision_transformer as vt  # noqa: E402
from depth_anything_3.api import DepthAnything3  # noqa: E402
from depth_anything_3.cfg import create_object, load_config  # noqa: E402
from depth_anything_3.model.cam_dec import CameraDec  # noqa: E402
from depth_anything_3.model.cam_enc import CameraEnc  # noqa: E402
from depth_anything_3.model.da3 import DepthAnything3Net  # noqa: E402
from depth_anything_3.model.dinov2.dinov2 import DinoV2  # noqa: E402
from depth_anything_3.model.dualdpt import DualDPT  # noqa: E402
from depth_anything_3.registry import MODEL_REGISTRY  # noqa: E402
from depth_anything_3.utils.io.input_processor import InputProcessor  # noqa: E402
from depth_anything_3.utils.io.output_processor import OutputProcessor  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = {
    "middlebury": os.path.join(REPO, "tests/fixtures/scans/middlebury_motorcycle/color/0.png"),
    "garden0": os.path.join(REPO, "tests/fixtures/scans/colmap/garden/images/frame_000.png"),
    "garden1": os.path.join(REPO, "tests/fixtures/scans/colmap/garden/images/frame_001.png"),
    "garden2": os.path.join(REPO, "tests/fixtures/scans/colmap/garden/images/frame_002.png"),
}

# Tiny structures, in the shape of the checkpoint configs spatialsv reads (docs/da3.md): the
# presets' fields plus the backbone sizes a preset name implies.
STRUCTURES = {
    # Alternation from layer 2 (RoPE, QK-norm from 2), camera decoder and encoder.
    "tiny_alt2": {
        "net": {
            "name": "custom", "embed_dim": 32, "depth": 6, "num_heads": 2, "img_size": 70,
            "ffn_layer": "mlp", "out_layers": [1, 3, 4, 5], "alt_start": 2,
            "qknorm_start": 2, "rope_start": 2, "cat_token": True,
        },
        "head": {"dim_in": 64, "output_dim": 2, "features": 16, "out_channels": [8, 16, 32, 32]},
        "cam_enc": {"dim_out": 32},
        "cam_dec": {"dim_in": 64},
    },
    # Alternation from layer 3, QK-norm from 4, RoPE from 3; no camera decoder or encoder.
    "tiny_alt3": {
        "net": {
            "name": "custom", "embed_dim": 24, "depth": 5, "num_heads": 2, "img_size": 56,
            "ffn_layer": "mlp", "out_layers": [1, 2, 3, 4], "alt_start": 3,
            "qknorm_start": 4, "rope_start": 3, "cat_token": True,
        },
        "head": {"dim_in": 48, "output_dim": 2, "features": 16, "out_channels": [8, 8, 16, 16]},
    },
}


def build(structure):
    net = structure["net"]
    backbone = DinoV2.__new__(DinoV2)
    nn.Module.__init__(backbone)
    for k in ("out_layers", "alt_start", "qknorm_start", "rope_start", "cat_token"):
        setattr(backbone, k, net[k])
    backbone.name = net["name"]
    backbone.pretrained = vt.DinoVisionTransformer(
        img_size=net["img_size"], patch_size=14, embed_dim=net["embed_dim"],
        depth=net["depth"], num_heads=net["num_heads"], mlp_ratio=4,
        ffn_layer=net["ffn_layer"], alt_start=net["alt_start"],
        qknorm_start=net["qknorm_start"], rope_start=net["rope_start"],
        cat_token=net["cat_token"],
    )
    h = structure["head"]
    head = DualDPT(dim_in=h["dim_in"], output_dim=h["output_dim"], features=h["features"],
                   out_channels=h["out_channels"])
    cam_dec = CameraDec(dim_in=structure["cam_dec"]["dim_in"]) if "cam_dec" in structure else None
    cam_enc = CameraEnc(dim_out=structure["cam_enc"]["dim_out"]) if "cam_enc" in structure else None
    return DepthAnything3Net(backbone, head, cam_dec=cam_dec, cam_enc=cam_enc)


def randomise(model, seed):
    """Every parameter drawn (LayerScale and norms too, so no stage is an identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if p.dim() <= 1 else 1.0 / max(1.0, p[0].numel() ** 0.5)
            p.copy_(torch.randn(p.shape, generator=g) * scale)
            if name.endswith("ls1.gamma") or name.endswith("ls2.gamma"):
                p.abs_()
    return model


class Recorder:
    """Block outputs (as [B, S, N, C]) and the chosen reference view."""

    def __init__(self, model, b, s):
        self.out = {}
        self.handles = []
        blocks = model.backbone.pretrained.blocks
        for i, blk in enumerate(blocks):
            self.handles.append(blk.register_forward_hook(self.hook(f"block{i}", b, s)))
        self.ref = None
        orig = vt.select_reference_view

        def select(x, strategy="saddle_balanced"):
            idx = orig(x, strategy=strategy)
            self.ref = idx.clone()
            return idx

        vt.select_reference_view = select
        self.orig = orig

    def hook(self, name, b, s):
        def f(_m, _inp, out):
            self.out[name] = out.detach().reshape(b, s, -1, out.shape[-1]).clone()
        return f

    def close(self):
        for h in self.handles:
            h.remove()
        vt.select_reference_view = self.orig


def random_w2c(g, s):
    out = []
    for _ in range(s):
        q = torch.randn(4, generator=g)
        q = q / q.norm()
        x, y, z, w = q.tolist()
        r = torch.tensor([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
        m = torch.eye(4)
        m[:3, :3] = r
        m[:3, 3] = torch.randn(3, generator=g)
        out.append(m)
    return torch.stack(out)[None]


@torch.no_grad()
def run_case(model, tensors, case, s, h, w, seed, with_cameras=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, s, 3, h, w, generator=g)
    tensors[f"{case}.input"] = x
    vit = model.backbone.pretrained
    n = 1 + (h // 14) * (w // 14)
    tensors[f"{case}.pos_embed"] = vit.interpolate_pos_encoding(
        torch.zeros(1, n, vit.embed_dim), h, w).contiguous()
    tensors[f"{case}.tokens"] = vit.prepare_tokens_with_masks(x).contiguous()
    ext = ixt = None
    if with_cameras:
        ext = random_w2c(g, s)
        ixt = torch.tensor([[w * 0.9, 0.0, w / 2], [0.0, h * 0.8, h / 2], [0.0, 0.0, 1.0]])
        ixt = ixt[None, None].repeat(1, s, 1, 1) + torch.randn(1, s, 3, 3, generator=g) * 0.0
        tensors[f"{case}.extrinsics_in"] = ext
        tensors[f"{case}.intrinsics_in"] = ixt
        tensors[f"{case}.cam_enc_tokens"] = model.cam_enc(ext, ixt, (h, w)).contiguous()
    rec = Recorder(model, 1, s)
    try:
        cam_token = model.cam_enc(ext, ixt, (h, w)) if with_cameras else None
        feats, _ = model.backbone(x, cam_token=cam_token, export_feat_layers=[])
    finally:
        rec.close()
    for k, v in rec.out.items():
        tensors[f"{case}.{k}"] = v
    if rec.ref is not None:
        tensors[f"{case}.ref_view"] = rec.ref.to(torch.float32)
    for i, (f, c) in enumerate(feats):
        tensors[f"{case}.feat{i}"] = f.contiguous()
        tensors[f"{case}.cam_token{i}"] = c.contiguous()
    head = model.head(feats, h, w, patch_start_idx=0)
    for k in ("depth", "depth_conf", "ray", "ray_conf"):
        tensors[f"{case}.{k}"] = head[k].contiguous()
    out = model(x, ext, ixt, export_feat_layers=[])
    torch.testing.assert_close(out.depth, head["depth"])
    if model.cam_dec is not None:
        tensors[f"{case}.pose_enc"] = model.cam_dec(feats[-1][1]).contiguous()
        tensors[f"{case}.extrinsics"] = out.extrinsics.contiguous()
        tensors[f"{case}.intrinsics"] = out.intrinsics.contiguous()


class TinyDA3(DepthAnything3):
    """The reference's API object around a tiny network, forward without autocast."""

    def __init__(self, net):
        nn.Module.__init__(self)
        self.model_name = "tiny"
        self.model = net.eval()
        self.input_processor = InputProcessor()
        self.output_processor = OutputProcessor()
        self.device = None

    @torch.inference_mode()
    def forward(self, image, extrinsics=None, intrinsics=None, export_feat_layers=None,
                infer_gs=False, use_ray_pose=False, ref_view_strategy="saddle_balanced"):
        return self.model(image, extrinsics, intrinsics, export_feat_layers, infer_gs,
                          use_ray_pose, ref_view_strategy)


def save_checkpoint(model, structure, folder):
    """As `save_pretrained` does: safetensors' `save_model` on the API object (keys
    `model.*`; tensors shared between modules, such as the ray head's one LayerNorm, stored
    once)."""
    os.makedirs(folder, exist_ok=True)
    save_model(TinyDA3(model), os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_name": "tiny", "config": structure}, f, indent=2)
        f.write("\n")


def preprocessing(tensors, out):
    proc = InputProcessor()
    digests = {}
    for method in ("upper_bound_resize", "upper_bound_crop", "lower_bound_resize",
                   "lower_bound_crop"):
        imgs, _, _ = proc([PHOTOS["middlebury"]], None, None, 504, method, num_workers=1)
        img = imgs[0]
        mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
        std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
        # The normalised tensor is stored as the uint8 image it came from (4x smaller);
        # the test checks that normalising it gives the reference's tensor.
        u8 = torch.round((img * std + mean) * 255).clamp(0, 255).to(torch.uint8)
        back = (u8.float() / 255 - mean) / std
        assert torch.equal(back, img), method
        hwc = u8.permute(1, 2, 0).contiguous()
        if method == "upper_bound_resize":
            tensors[f"preprocess.middlebury.{method}"] = hwc
        else:
            # The others by their BLAKE3 and size (the fixtures stay small).
            digests[method] = {"shape": list(hwc.shape),
                               "blake3": blake3.blake3(hwc.numpy().tobytes()).hexdigest()}
    imgs, _, _ = proc([PHOTOS["garden0"]], None, None, 112, "upper_bound_resize", num_workers=1)
    tensors["preprocess.garden0.upper_bound_resize.112"] = imgs[0].contiguous()
    # Growing by scales that are not simple fractions (OpenCV's cubic runs through IPP here),
    # stored as the 8-bit images.
    for res in (57, 100, 230):
        imgs, _, _ = proc([PHOTOS["garden0"]], None, None, res, "upper_bound_resize",
                          num_workers=1)
        img = imgs[0]
        mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
        std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
        u8 = torch.round((img * std + mean) * 255).clamp(0, 255).to(torch.uint8)
        assert torch.equal((u8.float() / 255 - mean) / std, img), res
        tensors[f"preprocess.garden0.upper_bound_resize.{res}"] = u8.permute(1, 2, 0).contiguous()
    with open(os.path.join(out, "preprocess_middlebury.json"), "w") as f:
        json.dump(digests, f, indent=2, sort_keys=True)
        f.write("\n")


def manifests(out):
    for name in sorted(MODEL_REGISTRY):
        cfg = load_config(MODEL_REGISTRY[name])
        net = create_object(cfg)
        shapes = {f"model.{k}": list(v.shape) for k, v in net.state_dict().items()}
        with open(os.path.join(out, "manifests", f"{name}.json"), "w") as f:
            json.dump(shapes, f, indent=0, sort_keys=True)
            f.write("\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "da3/tests/fixtures")
    os.makedirs(os.path.join(out, "manifests"), exist_ok=True)
    torch.set_num_threads(1)
    tensors = {}
    for seed, (name, structure) in enumerate(STRUCTURES.items()):
        torch.manual_seed(seed)
        model = randomise(build(structure).eval(), 1000 + seed)
        save_checkpoint(model, structure, os.path.join(out, name))
        h, w = 42, 56
        for s in (1, 2, 3):
            run_case(model, tensors, f"{name}.v{s}", s, h, w, 10 * seed + s)
        if "cam_enc" in structure:
            run_case(model, tensors, f"{name}.v2cam", 2, h, w, 99, with_cameras=True)
        if name == "tiny_alt2":
            api = TinyDA3(model)
            photos = [PHOTOS["garden0"], PHOTOS["garden1"], PHOTOS["garden2"]]
            pred = api.inference(photos, process_res=112)
            tensors["inference.depth"] = torch.from_numpy(pred.depth.copy())
            tensors["inference.conf"] = torch.from_numpy(pred.conf.copy())
            tensors["inference.extrinsics"] = torch.from_numpy(pred.extrinsics.copy())
            tensors["inference.intrinsics"] = torch.from_numpy(pred.intrinsics.copy())
    preprocessing(tensors, out)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(out, "goldens.safetensors"))
    manifests(out)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    print(f"wrote {len(tensors)} golden tensors under {out} ({total / 1e6:.2f} MB in all)")


if __name__ == "__main__":
    main()
