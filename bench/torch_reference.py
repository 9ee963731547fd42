#!/usr/bin/env python3
"""PyTorch reference pipeline for Vidi1.5-9B (SPEC.md end to end): the "Python stack" baseline
and a second numerical oracle for the C++ engine.

Towers are transformers' SiglipVisionModel / WhisperEncoder built from config objects (no hub
access); preprocessing follows the official code (decord-style 1 fps frames, PIL BICUBIC per
frame, WhisperFeatureExtractor per 30 s piece); the glue and the decomposed-attention Gemma2
decoder are written here in plain torch. No torch.compile, as the official inference.

Usage: python3 bench/torch_reference.py --model DIR --video FILE --query TEXT
           [--max-new-tokens N] [--dump OUT.safetensors] [--timings OUT.json] [--golden G]
See bench/torch_reference.md.
"""
import argparse
import json
import math
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

STOP_ID = 107  # <end_of_turn>
SAMPLE_RATE = 16000
PIECE_SAMPLES = 30 * SAMPLE_RATE
HOP = 160
VISION_GRID = 28  # 27x27 SigLIP patches padded to 28x28
TOKEN_BUDGET = 60000

# Built-in tower sizes for the two hub ids the released checkpoint names.
BUILTIN_SIGLIP = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                      num_attention_heads=16, image_size=384, patch_size=14, num_channels=3,
                      layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
BUILTIN_WHISPER = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20,
                       encoder_ffn_dim=5120, num_mel_bins=128, max_source_positions=1500,
                       activation_function="gelu", decoder_layers=1, decoder_attention_heads=20,
                       decoder_ffn_dim=5120)


def log(*a):
    print("[torch_reference]", *a, file=sys.stderr, flush=True)


class Stopwatch:
    """Per-stage wall times with the GPU drained at both ends of each stage."""

    def __init__(self, device):
        self.device = device
        self.times = {}

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def stage(self, name):
        sw = self

        class _Stage:
            def __enter__(self):
                sw.sync()
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                sw.sync()
                sw.times[name] = sw.times.get(name, 0.0) + time.perf_counter() - self.t0
        return _Stage()


# ---------------------------------------------------------------------------------------------
# safetensors (read and written here: the format is a JSON header and raw little-endian data)

ST_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32,
             "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
             "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
ST_NAMES = {v: k for k, v in ST_DTYPES.items()}


def st_open(path):
    """Returns {name: (dtype, shape, tensor-view over a private mmap)}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in ST_DTYPES:
            raise SystemExit(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        dt = ST_DTYPES[info["dtype"]]
        b0, b1 = info["data_offsets"]
        numel = math.prod(info["shape"])
        if numel == 0:
            t = torch.empty(info["shape"], dtype=dt)
        else:
            t = torch.frombuffer(mm, dtype=dt, count=numel, offset=base + b0).reshape(info["shape"])
            if (b1 - b0) != t.numel() * t.element_size():
                raise SystemExit(f"{path}: tensor '{name}' byte range does not match its shape")
        out[name] = t
    return out


def st_save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_checkpoint_tensors(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    if not files:
        raise SystemExit(f"{model_dir}: no safetensors shards found")
    tensors = {}
    for f in files:
        tensors.update(st_open(os.path.join(model_dir, f)))
    return tensors


# ---------------------------------------------------------------------------------------------
# configuration

def tower_config(model_dir, ref, builtin, what):
    """Tower hyper-parameters: a directory with config.json (relative or absolute), else the
    built-in sizes for the known hub id."""
    if ref:
        for d in (os.path.join(model_dir, ref), ref):
            if os.path.isfile(os.path.join(d, "config.json")):
                return json.load(open(os.path.join(d, "config.json"))), d
    log(f"{what} tower '{ref}': no config directory, using the built-in sizes")
    return dict(builtin), "built-in"


# ---------------------------------------------------------------------------------------------
# media decoding (frames as decord samples them, audio as the ffmpeg CLI gives it)

def have_module(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False


def ffprobe_info(path):
    if not shutil.which("ffprobe"):
        return None
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                        "format=duration:stream=codec_type,avg_frame_rate,nb_frames,width,height",
                        "-of", "json", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{path}: ffprobe failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def video_duration(path):
    info = ffprobe_info(path)
    if info and "duration" in info.get("format", {}):
        return float(info["format"]["duration"]), "ffprobe"
    if have_module("av"):
        import av
        with av.open(path) as c:
            if c.duration:
                return c.duration / 1e6, "av"
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"{path}: cannot open the video")
    n, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    return n / fps, "cv2 (frame_count/fps)"


def sample_stride(avg_fps):
    stride = round(avg_fps / 1.0)
    if stride < 1:
        raise SystemExit(f"average frame rate {avg_fps} gives no 1 fps sampling stride")
    return stride


def frames_decord(path):
    from decord import VideoReader, cpu
    vr = VideoReader(path, ctx=cpu(0))
    idx = list(range(0, len(vr), sample_stride(vr.get_avg_fps())))
    batch = vr.get_batch(idx).asnumpy()
    for i in range(batch.shape[0]):
        yield batch[i]


def frames_av(path):
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        stride = sample_stride(float(s.average_rate))
        limit = s.frames or None
        for i, fr in enumerate(c.decode(s)):
            if limit is not None and i >= limit:
                break
            if i % stride == 0:
                yield fr.to_ndarray(format="rgb24")


def frames_torchvision(path):
    from torchvision.io import read_video
    v, _, info = read_video(path, pts_unit="sec", output_format="THWC")
    stride = sample_stride(info["video_fps"])
    for i in range(0, v.shape[0], stride):
        yield v[i].numpy()


def parse_rate(s):
    num, _, den = s.partition("/")
    return float(num) / float(den or 1)


def frames_ffmpeg(path):
    info = ffprobe_info(path)
    vs = [s for s in info["streams"] if s.get("codec_type") == "video"]
    if not vs:
        raise SystemExit(f"{path}: no video stream")
    w, h = int(vs[0]["width"]), int(vs[0]["height"])
    stride = sample_stride(parse_rate(vs[0]["avg_frame_rate"]))
    limit = int(vs[0]["nb_frames"]) if vs[0].get("nb_frames", "N/A").isdigit() else None
    p = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
                          "-vf", f"select=not(mod(n\\,{stride}))", "-vsync", "0",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size = w * h * 3
    kept = 0
    while True:
        buf = p.stdout.read(size)
        if len(buf) < size:
            break
        if limit is not None and kept * stride >= limit:
            continue  # frames past the container's frame count, as decord never reads them
        kept += 1
        yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    p.stdout.close()
    if p.wait() != 0:
        raise SystemExit(f"{path}: ffmpeg frame decoding failed")


def frames_cv2(path):
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot open the video")
    stride = sample_stride(cap.get(cv2.CAP_PROP_FPS))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    for i in range(n):
        if not cap.grab():
            break
        if i % stride == 0:
            ok, bgr = cap.retrieve()
            if not ok:
                raise SystemExit(f"{path}: OpenCV failed to convert frame {i}")
            yield np.ascontiguousarray(bgr[:, :, ::-1])
    cap.release()


FRAME_DECODERS = [("decord", lambda: have_module("decord"), frames_decord),
                  ("av", lambda: have_module("av"), frames_av),
                  ("torchvision.io", lambda: have_module("av") and have_module("torchvision"),
                   frames_torchvision),
                  ("ffmpeg-cli", lambda: bool(shutil.which("ffmpeg") and shutil.which("ffprobe")),
                   frames_ffmpeg),
                  ("cv2", lambda: have_module("cv2"), frames_cv2)]


def decode_frames(path, size, forced=None):
    """Sampled frames resized to size x size with PIL BICUBIC, uint8 [F, size, size, 3]."""
    from PIL import Image
    for name, available, fn in FRAME_DECODERS:
        if (forced is None and available()) or forced == name:
            out = []
            for rgb in fn(path):
                img = Image.fromarray(rgb, "RGB").resize((size, size), Image.BICUBIC)
                out.append(np.asarray(img))
            if not out:
                raise SystemExit(f"{path}: no frames decoded")
            return np.stack(out), name
    raise SystemExit("no video decoder available (decord, av, torchvision.io, ffmpeg CLI, cv2)")


def audio_ffmpeg(path):
    info = ffprobe_info(path)
    if info is not None and not any(st.get("codec_type") == "audio" for st in info["streams"]):
        return np.zeros(0, np.int16)
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vn", "-ac", "1", "-ar",
                        str(SAMPLE_RATE), "-f", "s16le", "-"], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"{path}: ffmpeg audio decoding failed: {r.stderr.decode().strip()}")
    return np.frombuffer(r.stdout, np.int16)


def audio_av(path):
    import av
    with av.open(path) as c:
        if not c.streams.audio:
            return np.zeros(0, np.int16)
        rs = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        for fr in c.decode(c.streams.audio[0]):
            for o in rs.resample(fr):
                chunks.append(o.to_ndarray().reshape(-1))
        for o in rs.resample(None):
            chunks.append(o.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def audio_cv2(path):
    import cv2
    params = [cv2.CAP_PROP_AUDIO_STREAM, 0, cv2.CAP_PROP_VIDEO_STREAM, -1,
              cv2.CAP_PROP_AUDIO_DATA_DEPTH, cv2.CV_16S,
              cv2.CAP_PROP_AUDIO_SAMPLES_PER_SECOND, SAMPLE_RATE]
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot open the audio stream")
    rate = int(cap.get(cv2.CAP_PROP_AUDIO_SAMPLES_PER_SECOND))
    if rate != SAMPLE_RATE:
        raise SystemExit(f"{path}: OpenCV gives audio at {rate} Hz, not {SAMPLE_RATE}")
    base = int(cap.get(cv2.CAP_PROP_AUDIO_BASE_INDEX))
    channels = int(cap.get(cv2.CAP_PROP_AUDIO_TOTAL_CHANNELS))
    per_channel = [[] for _ in range(channels)]
    while cap.grab():
        for ch in range(channels):
            ok, a = cap.retrieve(None, base + ch)
            if ok and a is not None:
                per_channel[ch].append(np.asarray(a).reshape(-1))
    cap.release()
    chans = [np.concatenate(c).astype(np.float64) for c in per_channel if c]
    if not chans:
        return np.zeros(0, np.int16)
    n = min(len(c) for c in chans)
    mono = sum(c[:n] for c in chans) / len(chans)  # plain average downmix
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


AUDIO_DECODERS = [("ffmpeg-cli", lambda: bool(shutil.which("ffmpeg")), audio_ffmpeg),
                  ("av", lambda: have_module("av"), audio_av),
                  ("cv2", lambda: have_module("cv2") and hasattr(__import__("cv2"),
                                                                 "CAP_PROP_AUDIO_STREAM"),
                   audio_cv2)]


def decode_audio(path, forced=None):
    """Mono 16 kHz samples as s16/32768 (float32) and the decoder's name."""
    for name, available, fn in AUDIO_DECODERS:
        if (forced is None and available()) or forced == name:
            return fn(path).astype(np.float32) / 32768.0, name
    raise SystemExit("no audio decoder available (ffmpeg CLI, av, cv2); use --audio-pcm")


def log_mel(samples, mel_bins):
    """Whisper log-mel per 30 s piece: [pieces, mel_bins, 3000] and mel_frames."""
    from transformers import WhisperFeatureExtractor
    fe = WhisperFeatureExtractor(feature_size=mel_bins)
    pieces = [samples[i:i + PIECE_SAMPLES] for i in range(0, len(samples), PIECE_SAMPLES)]
    mel_frames = sum(len(p) // HOP for p in pieces)
    feats = fe(pieces, sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"]
    return torch.from_numpy(np.asarray(feats, np.float32)), mel_frames


# ---------------------------------------------------------------------------------------------
# model

def rms(x, eps):
    xf = x.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)


def gemma_norm(x, w, eps, dtype=None):  # (1 + w) * rmsnorm(x), computed in fp32 as transformers' Gemma2
    return (rms(x, eps) * (1.0 + w.float())).to(dtype or x.dtype)


def plain_norm(x, w, eps=1e-5):  # w * rmsnorm(x), glue norms
    return w * rms(x, eps).to(x.dtype)


def linear(x, w, b=None):
    return F.linear(x, w, b)


def scores_f32(q, kt):
    """q [B, M, hd] · kt [B, hd, N] with f32 results. The official model's FlashAttention-2 keeps
    the scores in f32 (accumulated from the compute-dtype inputs, never rounded to them), and
    so does the engine; a plain bf16 matmul would round every score to bf16 first (a ~2^-9
    relative error before the soft-cap and softmax)."""
    if q.dtype == torch.float32:
        return torch.bmm(q, kt)
    try:
        return torch.bmm(q, kt, out_dtype=torch.float32)  # PyTorch >= 2.8: bf16 GEMM, f32 output
    except TypeError:
        return torch.bmm(q.float(), kt.float())


class Vidi:
    def __init__(self, model_dir, device, dtype, towers=True):
        self.dir = model_dir
        self.device, self.dtype = device, dtype
        self.res_dtype = dtype  # the residual streams' dtype (--residual f32 keeps them in float32)
        self.cfg = json.load(open(os.path.join(model_dir, "config.json")))
        c = self.cfg
        self.D = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.KV = c["num_key_value_heads"]
        self.hd = c.get("head_dim", self.D // self.H)
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.scale = c.get("query_pre_attn_scalar", self.hd) ** -0.5
        self.attn_cap = c.get("attn_logit_softcapping") or 0.0
        self.final_cap = c.get("final_logit_softcapping") or 0.0
        self.window = c.get("sliding_window") or 0
        self.theta = c.get("rope_theta", 10000.0)
        self.pool = c.get("mm_image_pool_size", 2)
        self.apool = c.get("mm_audio_pool_size", 5)
        self.time_interval = c.get("mm_time_interval", 10000)
        self.select_layer = c.get("mm_vision_select_layer", -2)
        # sqrt(D) rounded to the compute dtype, as the reference multiplies in that dtype
        self.embed_scale = torch.tensor(math.sqrt(self.D), dtype=dtype).item()

        raw = load_checkpoint_tensors(model_dir)
        self.w = {}
        vis, aud = {}, {}
        for name, t in raw.items():
            if name.startswith("model.mm_"):  # multimodal tensors sit under model. too
                name = name[len("model."):]
            if name.startswith("mm_vis."):
                vis[name[len("mm_vis."):]] = t
            elif name.startswith("mm_aud.encoder."):
                aud[name[len("mm_aud.encoder."):]] = t
            elif name.startswith("mm_aud."):
                raise SystemExit(f"unexpected audio tensor '{name}' (expected mm_aud.encoder.*)")
            else:
                self.w[name] = t.to(device=device, dtype=dtype)
        self.check_llm_shapes()
        self.vision = self.audio = None
        if towers:
            self.vision = self.build_vision(vis)
            self.audio = self.build_audio(aud)

    # -- loading ------------------------------------------------------------------------------
    def check_llm_shapes(self):
        D, H, KV, hd, V = self.D, self.H, self.KV, self.hd, self.cfg["vocab_size"]
        I = self.cfg["intermediate_size"]
        exp = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
        for i in range(self.L):
            p = f"model.layers.{i}."
            exp.update({p + "self_attn.q_proj.weight": [H * hd, D],
                        p + "self_attn.k_proj.weight": [KV * hd, D],
                        p + "self_attn.v_proj.weight": [KV * hd, D],
                        p + "self_attn.o_proj.weight": [D, H * hd],
                        p + "mlp.gate_proj.weight": [I, D], p + "mlp.up_proj.weight": [I, D],
                        p + "mlp.down_proj.weight": [D, I]})
            for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                      "post_feedforward_layernorm"):
                exp[p + n + ".weight"] = [D]
        problems = [f"missing '{n}' {s}" for n, s in exp.items() if n not in self.w]
        problems += [f"'{n}': expected {s}, found {list(self.w[n].shape)}"
                     for n, s in exp.items() if n in self.w and list(self.w[n].shape) != s]
        if problems:
            raise SystemExit("checkpoint does not match config.json:\n  " + "\n  ".join(problems))

    def build_vision(self, sd):
        from transformers import SiglipVisionConfig, SiglipVisionModel
        cfg, src = tower_config(self.dir, self.cfg.get("mm_vision_tower"), BUILTIN_SIGLIP, "vision")
        cfg = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
        vc = SiglipVisionConfig(**cfg)
        return self.build_tower(SiglipVisionModel, vc, sd, "mm_vis.", src)

    def build_audio(self, sd):
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder
        cfg, src = tower_config(self.dir, self.cfg.get("mm_audio_tower"), BUILTIN_WHISPER, "audio")
        cfg = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
        wc = WhisperConfig(**cfg)
        return self.build_tower(WhisperEncoder, wc, sd, "mm_aud.encoder.", src)

    def build_tower(self, cls, config, sd, prefix, src):
        try:
            config._attn_implementation = "sdpa"
        except Exception:
            pass
        with torch.device(self.device):
            model = cls(config)
        model = model.to(self.dtype).eval()
        own = model.state_dict()
        # transformers 5 drops the 'vision_model.' level of SiglipVisionModel's own names:
        # strip (or add) the one level that makes the checkpoint's names match the model's
        for inner in ("vision_model.", "encoder."):
            hits = sum(k in sd for k in own)
            stripped = {(k[len(inner):] if k.startswith(inner) else k): v for k, v in sd.items()}
            added = {inner + k: v for k, v in sd.items()}
            if sum(k in stripped for k in own) > hits:
                sd, prefix = stripped, prefix + inner
            elif sum(k in added for k in own) > hits:
                sd = added
                prefix = prefix[:-len(inner)] if prefix.endswith(inner) else prefix
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        bad = [f"'{prefix}{k}': expected {list(own[k].shape)}, found {list(sd[k].shape)}"
               for k in own if k in sd and own[k].shape != sd[k].shape]
        if missing or bad:
            raise SystemExit(f"{cls.__name__} ({src}) does not match the checkpoint:\n  " +
                             "\n  ".join([f"missing '{prefix}{k}'" for k in missing] + bad))
        if unexpected:
            log(f"{cls.__name__}: {len(unexpected)} unused tensors under {prefix} "
                f"(e.g. {unexpected[0]})")
        model.load_state_dict({k: sd[k] for k in own}, strict=True)
        log(f"{cls.__name__} from {src}: attention '{getattr(config, '_attn_implementation', '?')}'")
        return model

    # -- glue ---------------------------------------------------------------------------------
    def mlp2(self, prefix, x):
        w = self.w
        h = linear(x, w[prefix + ".0.weight"], w[prefix + ".0.bias"])
        return linear(F.gelu(h), w[prefix + ".2.weight"], w[prefix + ".2.bias"])

    def positions(self, name, N, l):
        """rmsnorm(pos(N, l)) [l, D]: sinusoid of linspace(0, N-1, l) through the positional MLP
        in fp32."""
        D = self.D
        q = torch.arange(l, dtype=torch.float64) / max(l - 1, 1) * (N - 1)
        i = torch.arange(D // 2, dtype=torch.float64)
        f = torch.exp(-2.0 * i * math.log(10000.0) / D)
        a = q[:, None] * f[None, :]
        pe = torch.stack([torch.sin(a), torch.cos(a)], dim=-1).reshape(l, D)
        pe = pe.to(device=self.device, dtype=torch.float32)
        p = f"mm_rand_pos_{name}.mlp"
        w = {k: self.w[f"{p}.{k}"].float() for k in ("0.weight", "0.bias", "2.weight", "2.bias")}
        y = F.linear(F.gelu(F.linear(pe, w["0.weight"], w["0.bias"])), w["2.weight"], w["2.bias"])
        return rms(y, 1e-5)

    def grid_side(self, frames):
        p2 = self.pool * self.pool
        if frames * VISION_GRID * VISION_GRID > TOKEN_BUDGET * p2:
            r = math.sqrt(TOKEN_BUDGET * p2 / (frames * VISION_GRID * VISION_GRID))
            t = int(VISION_GRID * r)
            return max(10, t - t % 2)
        return VISION_GRID

    @torch.no_grad()
    def vision_features(self, pixels_u8, batch, pixel_values=None):
        """SigLIP hidden state at select_layer, padded, budget-resized and space-to-depth'd:
        [F, C*p*p, h, w]. pixels_u8: [F, S, S, 3] uint8 on the CPU."""
        F_ = pixels_u8.shape[0] if pixel_values is None else pixel_values.shape[0]
        side = self.grid_side(F_)
        out = []
        for f0 in range(0, F_, batch):
            if pixel_values is None:
                x = torch.from_numpy(pixels_u8[f0:f0 + batch]).to(self.device, non_blocking=True)
                x = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
                x = (x - 0.5) / 0.5
            else:
                x = pixel_values[f0:f0 + batch].to(self.device).float()
            hs = self.vision(pixel_values=x.to(self.dtype), output_hidden_states=True).hidden_states
            h = hs[self.select_layer]  # [b, P, C]
            b, P, C = h.shape
            g = int(round(math.sqrt(P)))
            h = h.reshape(b, g, g, C).permute(0, 3, 1, 2)
            h = F.pad(h, (0, VISION_GRID - g, 0, VISION_GRID - g))
            if side != VISION_GRID:
                h = F.interpolate(h, size=(side, side), mode="bilinear", align_corners=False)
            out.append(F.pixel_unshuffle(h, self.pool))  # channel c*p*p + dy*p + dx
        return torch.cat(out)

    @torch.no_grad()
    def image_tokens(self, feats):
        """feats [F, C*p*p, h, w] -> tokens [F*h*w, D] (after mm_rand_llm_norm) and (F, h, w)."""
        F_, _, h, w = feats.shape
        x = feats.permute(0, 2, 3, 1)  # [F, h, w, C*p*p]
        x = self.mlp2("mm_rand_img_projector.model", x)
        x = plain_norm(x, self.w["mm_rand_img_norm.weight"])
        x = x + self.positions("h", self.pool, h).to(x.dtype)[None, :, None, :]
        x = x + self.positions("w", self.pool, w).to(x.dtype)[None, None, :, :]
        x = x + self.positions("t", self.time_interval, F_).to(x.dtype)[:, None, None, :]
        x = plain_norm(x.reshape(F_ * h * w, self.D), self.w["mm_rand_llm_norm.weight"])
        return x, (F_, h, w)

    @torch.no_grad()
    def audio_states(self, mel, mel_frames, batch):
        out = []
        for i in range(0, mel.shape[0], batch):
            x = mel[i:i + batch].to(self.device, self.dtype)
            out.append(self.audio(x).last_hidden_state)
        states = torch.cat(out).reshape(-1, out[0].shape[-1])
        return states[: mel_frames * 1500 // 3000]

    @torch.no_grad()
    def audio_tokens(self, states):
        n = states.shape[0] // self.apool
        if n == 0:
            return None
        w = self.w["mm_rand_aud_pool.weight"]
        x = F.conv1d(states.to(self.dtype).t()[None], w, stride=self.apool)[0].t()  # [n, D]
        x = self.mlp2("mm_rand_aud_projector.model", x)
        x = plain_norm(x, self.w["mm_rand_aud_norm.weight"])
        x = x + self.positions("t", self.time_interval, n).to(x.dtype)
        return plain_norm(x, self.w["mm_rand_llm_norm.weight"])

    # -- decoder ------------------------------------------------------------------------------
    def layer(self, i):
        p = f"model.layers.{i}."
        return lambda n: self.w[p + n]

    def mlp(self, W, h):
        return linear(F.gelu(linear(h, W("mlp.gate_proj.weight")), approximate="tanh") *
                      linear(h, W("mlp.up_proj.weight")), W("mlp.down_proj.weight"))

    @torch.no_grad()
    def media_kv(self, tokens, chunk=8192):
        """Per-layer K/V of one media stream, [L] x ([N, KV, hd], [N, KV, hd])."""
        N = tokens.shape[0]
        KV, hd, H = self.KV, self.hd, self.H
        ks = [torch.empty(N, KV, hd, device=self.device, dtype=self.dtype) for _ in range(self.L)]
        vs = [torch.empty_like(k) for k in ks]
        for r0 in range(0, N, chunk):
            m = (tokens[r0:r0 + chunk].to(self.dtype) * self.embed_scale).to(self.res_dtype)
            n = m.shape[0]
            for i in range(self.L):
                W = self.layer(i)
                h = gemma_norm(m, W("input_layernorm.weight"), self.eps, self.dtype)
                k = linear(h, W("self_attn.k_proj.weight")).view(n, KV, hd)
                v = linear(h, W("self_attn.v_proj.weight")).view(n, KV, hd)
                ks[i][r0:r0 + n] = k
                vs[i][r0:r0 + n] = v
                if i + 1 == self.L:
                    break  # the last update feeds nothing
                # diagonal attention: each media token's attention output is its own value
                ve = v.repeat_interleave(H // KV, dim=1).reshape(n, H * hd)
                o = linear(ve, W("self_attn.o_proj.weight"))
                m = m + gemma_norm(o, W("post_attention_layernorm.weight"), self.eps)
                m = m + gemma_norm(self.mlp(W, gemma_norm(m, W("pre_feedforward_layernorm.weight"),
                                                          self.eps, self.dtype)),
                                   W("post_feedforward_layernorm.weight"), self.eps)
        return list(zip(ks, vs))

    def attend(self, q, k, v, mask=None, q_chunk=None):
        """Soft-capped attention with explicit scores. q [T, H, hd]; k, v [N, KV, hd];
        mask [T, N] bool (True = allowed) or None. Returns [T, H, hd]."""
        T, H, hd = q.shape
        N, KV = k.shape[0], k.shape[1]
        G = H // KV
        kt = k.permute(1, 2, 0)  # [KV, hd, N]
        vt = v.permute(1, 0, 2)  # [KV, N, hd]
        # scores in chunks of queries so that [KV, G*t, N] fp32 stays near 1 GiB
        if q_chunk is None:
            q_chunk = max(1, (1 << 28) // max(1, KV * G * N))
        outs = []
        for t0 in range(0, T, q_chunk):
            qc = q[t0:t0 + q_chunk]
            t = qc.shape[0]
            qg = qc.reshape(t, KV, G, hd).permute(1, 2, 0, 3).reshape(KV, G * t, hd)
            s = scores_f32(qg, kt) * self.scale  # [KV, G*t, N]
            if self.attn_cap:
                s = torch.tanh(s / self.attn_cap) * self.attn_cap
            if mask is not None:
                mc = mask[t0:t0 + t]  # [t, N]
                s = s.view(KV, G, t, N).masked_fill(~mc[None, None], float("-inf")).view(KV, G * t, N)
            p = torch.softmax(s, dim=-1).to(v.dtype)
            o = torch.matmul(p, vt)  # [KV, G*t, hd]
            outs.append(o.view(KV, G, t, hd).permute(2, 0, 1, 3).reshape(t, H, hd))
        return torch.cat(outs)

    def rope(self, x, pos):
        """Rotate-half RoPE; x [T, heads, hd], pos [T]."""
        hd = x.shape[-1]
        inv = 1.0 / (self.theta ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
        ang = pos.float()[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :].to(x.dtype)
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :].to(x.dtype)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def new_cache(self, capacity):
        return {"len": 0, "k": [torch.empty(capacity, self.KV, self.hd, device=self.device,
                                            dtype=self.dtype) for _ in range(self.L)],
                "v": [torch.empty(capacity, self.KV, self.hd, device=self.device,
                                  dtype=self.dtype) for _ in range(self.L)]}

    @torch.no_grad()
    def forward(self, ids, cache, media, all_logits=False):
        """Appends ids to the text cache; returns fp32 logits ([T, V] or [1, V])."""
        T = len(ids)
        pos0 = cache["len"]
        if pos0 + T > cache["k"][0].shape[0]:
            raise SystemExit(f"text cache holds {cache['k'][0].shape[0]} positions, "
                             f"{pos0 + T} needed")
        H, KV, hd = self.H, self.KV, self.hd
        idt = torch.tensor(ids, device=self.device, dtype=torch.long)
        x = (self.w["model.embed_tokens.weight"][idt] * self.embed_scale).to(self.res_dtype)
        pos = torch.arange(pos0, pos0 + T, device=self.device)
        kpos = torch.arange(0, pos0 + T, device=self.device)
        causal = kpos[None, :] <= pos[:, None]
        windowed = causal & (pos[:, None] - kpos[None, :] <= self.window) if self.window else causal
        for i in range(self.L):
            W = self.layer(i)
            h = gemma_norm(x, W("input_layernorm.weight"), self.eps, self.dtype)
            q = linear(h, W("self_attn.q_proj.weight")).view(T, H, hd)
            k = linear(h, W("self_attn.k_proj.weight")).view(T, KV, hd)
            v = linear(h, W("self_attn.v_proj.weight")).view(T, KV, hd)
            attn = None
            for mk, mv in (m[i] for m in media if m is not None):
                c = self.attend(q, mk, mv)  # queries without RoPE, no mask
                attn = c if attn is None else attn + c
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            cache["k"][i][pos0:pos0 + T] = k
            cache["v"][i][pos0:pos0 + T] = v
            mask = windowed if (i % 2 == 0 and self.window) else causal
            s = self.attend(q, cache["k"][i][:pos0 + T], cache["v"][i][:pos0 + T], mask)
            attn = s if attn is None else attn + s
            o = linear(attn.reshape(T, H * hd), W("self_attn.o_proj.weight"))
            x = x + gemma_norm(o, W("post_attention_layernorm.weight"), self.eps)
            x = x + gemma_norm(self.mlp(W, gemma_norm(x, W("pre_feedforward_layernorm.weight"),
                                                      self.eps, self.dtype)),
                               W("post_feedforward_layernorm.weight"), self.eps)
        cache["len"] = pos0 + T
        if not all_logits:
            x = x[-1:]
        x = gemma_norm(x, self.w["model.norm.weight"], self.eps, self.dtype)
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        y = linear(x, head).float()
        if self.final_cap:
            y = torch.tanh(y / self.final_cap) * self.final_cap
        return y


# ---------------------------------------------------------------------------------------------
# prompt

def prompt_ids(model_dir, text, with_media):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    bos = sp.bos_id()
    if with_media:
        before, after = "<start_of_turn>user\n", f"\n{text}<end_of_turn>\n<start_of_turn>model\n"
        return [bos] + sp.encode(before) + sp.encode(after), sp
    return [bos] + sp.encode(f"<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n"), sp


def retrieval_text(query):
    q = query.strip()
    if q.endswith("."):
        q = q[:-1]
    return f"During which time segments in the video can we see {q}?"


def parse_answer(text, duration):
    def hms(s):
        s = int(s)
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    out = []
    for a, b in re.findall(r"(\d\.\d+)-(\d\.\d+)", text):
        s, e = float(a) * duration, float(b) * duration
        out.append({"start_s": s, "end_s": e, "hms": f"{hms(s)}-{hms(e)}"})
    return out


def rel_err(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint directory (official layout)")
    ap.add_argument("--video", help="video file")
    ap.add_argument("--query", help="retrieval query (wrapped in the retrieval prompt)")
    ap.add_argument("--question", help="free-form question (used verbatim)")
    ap.add_argument("--text-only", action="store_true", help="no media: plain Gemma2 chat turn")
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16",
                    help="compute dtype (the official inference casts everything to float16)")
    ap.add_argument("--residual", choices=["compute", "float32"], default="compute",
                    help="dtype of the decoder's residual streams (text and media): the compute dtype as "
                         "the official model, or float32 (a precision experiment)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dump", help="write tensors (golden names) to this .safetensors file")
    ap.add_argument("--dump-media", action="store_true",
                    help="also dump image_tokens/audio_tokens/mel (large at full size)")
    ap.add_argument("--timings", help="write per-stage wall times to this JSON file")
    ap.add_argument("--golden", help="golden .safetensors: report relative errors against it and "
                                     "teacher-force its forced_ids")
    ap.add_argument("--pixel-values-from", help="golden file: use its pixel_values_frame* "
                                                "(all frames must be present)")
    ap.add_argument("--mel-from", help="golden file: use its mel and mel_frames")
    ap.add_argument("--media-from", help="golden file: use its image_tokens/audio_tokens "
                                         "(decoder-only check; no towers, no decoding)")
    ap.add_argument("--audio-pcm", help="raw s16le mono 16 kHz file to use instead of decoding")
    ap.add_argument("--frame-decoder", choices=[n for n, _, _ in FRAME_DECODERS])
    ap.add_argument("--audio-decoder", choices=[n for n, _, _ in AUDIO_DECODERS])
    ap.add_argument("--vision-batch", type=int, default=32)
    ap.add_argument("--audio-batch", type=int, default=8)
    ap.add_argument("--kv-chunk", type=int, default=8192)
    ap.add_argument("--repeat-question", action="store_true",
                    help="ask the question a second time reusing the media K/V (timed)")
    args = ap.parse_args()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if dtype == torch.float32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sw = Stopwatch(device)
    info = {"torch": torch.__version__, "dtype": args.dtype, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv)}
    try:
        import transformers
        info["transformers"] = transformers.__version__
    except Exception:
        pass

    with_media = not args.text_only
    if with_media and not args.video and not args.media_from:
        raise SystemExit("--video is required unless --text-only or --media-from is given")
    if args.text_only:
        text = args.question or args.query
        if not text:
            raise SystemExit("--text-only needs --question")
    elif args.question:
        text = args.question
    elif args.query:
        text = retrieval_text(args.query)
    else:
        raise SystemExit("--query or --question is required")

    golden = st_open(args.golden) if args.golden else {}
    dump = {}

    with sw.stage("load_model"):
        need_towers = with_media and not args.media_from
        model = Vidi(args.model, device, dtype, towers=need_towers)
        if args.residual == "float32":
            model.res_dtype = torch.float32
    log(f"model loaded: D={model.D} layers={model.L} heads={model.H}/{model.KV} "
        f"({sw.times['load_model']:.2f} s)")

    ids, sp = prompt_ids(args.model, text, with_media)
    info["prompt_text"] = text
    info["prompt_tokens"] = len(ids)
    dump["prompt_ids"] = torch.tensor(ids, dtype=torch.int64)

    media = []
    duration = None
    t_request = time.perf_counter()
    if with_media:
        if args.video:
            duration, info["duration_source"] = video_duration(args.video)
            info["duration_s"] = duration
        if args.media_from:
            g = st_open(args.media_from)
            img = g["image_tokens"].to(device, torch.float32)
            aud = g["audio_tokens"].to(device, torch.float32) if "audio_tokens" in g else None
            info["media_source"] = f"image/audio tokens from {args.media_from}"
        else:
            # -- vision
            pixel_values = None
            with sw.stage("decode_frames"):
                if args.pixel_values_from:
                    g = st_open(args.pixel_values_from)
                    keys = sorted((k for k in g if k.startswith("pixel_values_frame")),
                                  key=lambda k: int(k[len("pixel_values_frame"):]))
                    nums = [int(k[len("pixel_values_frame"):]) for k in keys]
                    if nums != list(range(len(nums))):
                        raise SystemExit(f"{args.pixel_values_from} holds frames {nums}, "
                                         "not every frame: cannot replace decoding")
                    pixel_values = torch.stack([g[k].float() for k in keys])
                    frames = None
                    info["frame_decoder"] = "golden pixel values"
                else:
                    frames, info["frame_decoder"] = decode_frames(
                        args.video, model.vision.config.image_size, args.frame_decoder)
            nF = pixel_values.shape[0] if pixel_values is not None else frames.shape[0]
            info["frames"] = nF
            log(f"{nF} frames via {info['frame_decoder']} ({sw.times['decode_frames']:.2f} s)")
            if frames is not None:
                for i in sorted({0, nF - 1}):
                    dump[f"pixel_values_frame{i}"] = (
                        torch.from_numpy(frames[i]).permute(2, 0, 1).float() / 255.0 - 0.5) / 0.5
            with sw.stage("vision"):
                feats = model.vision_features(frames, args.vision_batch, pixel_values)
                img, grid = model.image_tokens(feats)
                del feats
            dump["image_token_grid"] = torch.tensor(grid, dtype=torch.int64)
            info["image_tokens"] = img.shape[0]
            info["image_token_grid"] = list(grid)
            # -- audio
            with sw.stage("decode_audio"):
                if args.mel_from:
                    g = st_open(args.mel_from)
                    mel, mel_frames = g["mel"].float(), int(g["mel_frames"][0])
                    info["audio_decoder"] = "golden mel"
                    samples = None
                elif args.audio_pcm:
                    samples = np.fromfile(args.audio_pcm, np.int16).astype(np.float32) / 32768.0
                    info["audio_decoder"] = f"pcm file {args.audio_pcm}"
                else:
                    samples, info["audio_decoder"] = decode_audio(args.video, args.audio_decoder)
            log(f"audio via {info['audio_decoder']} ({sw.times['decode_audio']:.2f} s)")
            aud = None
            with sw.stage("audio"):
                if samples is not None and len(samples) > 0:
                    mel, mel_frames = log_mel(samples, model.audio.config.num_mel_bins)
                if samples is None or len(samples) > 0:
                    info["mel_frames"] = mel_frames
                    dump["mel_frames"] = torch.tensor([mel_frames], dtype=torch.int64)
                    if args.dump_media or args.golden:
                        dump["mel"] = mel
                    states = model.audio_states(mel, mel_frames, args.audio_batch)
                    aud = model.audio_tokens(states)
                    del states
        if args.dump_media or args.golden:
            dump["image_tokens"] = img.float()
            if aud is not None:
                dump["audio_tokens"] = aud.float()
        info["audio_tokens"] = 0 if aud is None else aud.shape[0]
        with sw.stage("media_kv"):
            media = [model.media_kv(img, args.kv_chunk)]
            if aud is not None:
                media.append(model.media_kv(aud, args.kv_chunk))
        del img, aud
        info["media_kv_bytes"] = sum(k.numel() * k.element_size() * 2 for m in media for k, _ in m)

    n_forced = len(golden["forced_ids"]) if "forced_ids" in golden else 0
    cap = len(ids) + max(args.max_new_tokens, n_forced) + 1
    cache = model.new_cache(cap)
    with sw.stage("prefill"):
        logits = model.forward(ids, cache, media, all_logits=True)
    dump["prompt_logits"] = logits.cpu()

    # greedy decoding with the KV cache
    gen, margins, step_times = [], [], []
    last = logits[-1]
    for _ in range(args.max_new_tokens):
        top2 = torch.topk(last, 2)
        tok = int(top2.indices[0])
        margins.append(float(top2.values[0] - top2.values[1]))
        gen.append(tok)
        if tok == STOP_ID or len(gen) == args.max_new_tokens:
            break
        t0 = time.perf_counter()
        last = model.forward([tok], cache, media)[-1]
        sw.sync()
        step_times.append(time.perf_counter() - t0)
    info["request_s"] = time.perf_counter() - t_request
    dump["generated_ids"] = torch.tensor(gen, dtype=torch.int64)
    dump["generated_margins"] = torch.tensor(margins, dtype=torch.float32)
    answer = sp.decode([t for t in gen if not sp.is_control(t) and t != STOP_ID])
    info["answer"] = answer
    info["generated_tokens"] = len(gen)
    if duration is not None:
        info["segments"] = parse_answer(answer, duration)

    if args.repeat_question:  # a second question on the same video: media K/V reused
        sw.sync()
        t0 = time.perf_counter()
        cache2 = model.new_cache(cap)
        last = model.forward(ids, cache2, media)[-1]
        for _ in range(len(gen) - 1):
            last = model.forward([int(torch.argmax(last))], cache2, media)[-1]
        sw.sync()
        info["second_question_s"] = time.perf_counter() - t0

    if n_forced and not args.text_only:  # teacher forcing through the incremental path
        forced = [int(t) for t in golden["forced_ids"]]
        c2 = model.new_cache(cap)
        rows = [model.forward(ids, c2, media)[-1]]
        for t in forced:
            rows.append(model.forward([t], c2, media)[-1])
        dump["forced_ids"] = torch.tensor(forced, dtype=torch.int64)
        dump["forced_logits"] = torch.stack(rows).cpu()

    if args.text_only:  # golden names for the text-only case
        dump = {("text_" + k if k in ("prompt_ids", "prompt_logits", "generated_ids",
                                      "generated_margins") else k): v for k, v in dump.items()}

    sw.sync()
    timings = dict(sw.times)
    if step_times:
        timings["decode_per_token_s"] = sum(step_times) / len(step_times)
        timings["decode_tokens_timed"] = len(step_times)
    info["timings_s"] = timings
    if device.type == "cuda":
        info["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(device)

    if golden:
        parity = {}
        for k, v in dump.items():
            if k in golden and golden[k].shape == v.shape:
                if v.dtype in (torch.int64, torch.int32):
                    parity[k] = "equal" if torch.equal(v.cpu(), golden[k]) else \
                        f"DIFFER: {v.tolist()} vs {golden[k].tolist()}"
                elif k == "generated_margins":
                    continue
                else:
                    parity[k] = rel_err(v, golden[k].float())
                    if k.startswith("pixel_values"):
                        parity[k + "_max_abs"] = (v - golden[k]).abs().max().item()
            elif k in golden:
                parity[k] = f"shape {list(v.shape)} vs golden {list(golden[k].shape)}"
        info["parity"] = parity
        for k, v in parity.items():
            log(f"parity {k}: {v}")

    log(f"answer: {answer!r}")
    log("timings: " + ", ".join(f"{k}={v:.4f}" for k, v in timings.items()
                                if isinstance(v, float)))
    if args.dump:
        st_save(args.dump, dump)
    if args.timings:
        with open(args.timings, "w") as f:
            json.dump(info, f, indent=1)
    print(json.dumps({k: info[k] for k in ("answer", "timings_s") if k in info}))


if __name__ == "__main__":
    main()
