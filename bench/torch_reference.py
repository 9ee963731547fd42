#!/usr/bin/env python3
"""PyTorch reference pipeline for Vidi1.5-9B (SPEC.md end to end) and Vidi-7B (docs/vidi-7b.md):
the "Python stack" baseline and a second numerical oracle for the C++ engine.

Towers are transformers' SiglipVisionModel / WhisperEncoder built from config objects (no hub
access); preprocessing follows the official code (decord-style 1 fps frames, PIL BICUBIC per
frame, WhisperFeatureExtractor per 30 s piece); the glue and the decomposed-attention Gemma2
decoder are written here in plain torch. No torch.compile, as the official inference. The
family comes from config.json (model_type dattn_gemma2: Vidi1.5-9B, dattn_mistral: Vidi-7B).

Usage: python3 bench/torch_reference.py --model DIR --video FILE --query TEXT
           [--max-new-tokens N] [--dump OUT.safetensors] [--timings OUT.json] [--golden G]
       python3 bench/torch_reference.py --model DIR --self-check   (Vidi-7B decoder checks)
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

def up(x):
    """The dtype norms compute in: float32 for 16-bit inputs, else the input's own (float64
    stays float64 for the golden files)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def rms(x, eps):
    xf = up(x)
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
    if q.dtype in (torch.float32, torch.float64):
        return torch.bmm(q, kt)
    try:
        return torch.bmm(q, kt, out_dtype=torch.float32)  # PyTorch >= 2.8: bf16 GEMM, f32 output
    except TypeError:
        return torch.bmm(q.float(), kt.float())


class Vidi:
    """Vidi1.5-9B (SPEC.md)."""
    family = "vidi1.5"
    layer_norms = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm")
    tied_by_default = True  # Gemma2Config's tie_word_embeddings

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
        self.hd = c.get("head_dim") or self.D // self.H
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
        self.stop_ids = {STOP_ID}
        # the positional MLPs run in float32 as the official pos.py (float64 for golden files)
        self.pos_dtype = torch.float64 if dtype == torch.float64 else torch.float32
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
        self.frame_size = self.vision.config.image_size if self.vision is not None else None

    # -- loading ------------------------------------------------------------------------------
    def check_llm_shapes(self):
        D, H, KV, hd, V = self.D, self.H, self.KV, self.hd, self.cfg["vocab_size"]
        I = self.cfg["intermediate_size"]
        exp = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
        if not self.cfg.get("tie_word_embeddings", self.tied_by_default):
            exp["lm_head.weight"] = [V, D]
        for i in range(self.L):
            p = f"model.layers.{i}."
            exp.update({p + "self_attn.q_proj.weight": [H * hd, D],
                        p + "self_attn.k_proj.weight": [KV * hd, D],
                        p + "self_attn.v_proj.weight": [KV * hd, D],
                        p + "self_attn.o_proj.weight": [D, H * hd],
                        p + "mlp.gate_proj.weight": [I, D], p + "mlp.up_proj.weight": [I, D],
                        p + "mlp.down_proj.weight": [D, I]})
            for n in self.layer_norms:
                exp[p + n + ".weight"] = [D]
        self.check_shapes(exp, "config.json")

    def check_shapes(self, exp, what):
        problems = [f"missing '{n}' {s}" for n, s in exp.items() if n not in self.w]
        problems += [f"'{n}': expected {s}, found {list(self.w[n].shape)}"
                     for n, s in exp.items() if n in self.w and list(self.w[n].shape) != s]
        if problems:
            raise SystemExit(f"checkpoint does not match {what}:\n  " + "\n  ".join(problems))

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
    def pixel_values(self, u8):
        """uint8 [..., 3, S, S] -> the tower's input, float32."""
        return (u8.float() / 255.0 - 0.5) / 0.5

    def mlp2(self, prefix, x):
        w = self.w
        h = linear(x, w[prefix + ".0.weight"], w[prefix + ".0.bias"])
        return linear(F.gelu(h), w[prefix + ".2.weight"], w[prefix + ".2.bias"])

    def positions(self, name, N, l):
        """rmsnorm(pos(N, l)) [l, D]: sinusoid of linspace(0, N-1, l) through the positional MLP
        in fp32 (float64 for golden files)."""
        D = self.D
        q = torch.arange(l, dtype=torch.float64) / max(l - 1, 1) * (N - 1)
        i = torch.arange(D // 2, dtype=torch.float64)
        f = torch.exp(-2.0 * i * math.log(10000.0) / D)
        a = q[:, None] * f[None, :]
        pe = torch.stack([torch.sin(a), torch.cos(a)], dim=-1).reshape(l, D)
        pe = pe.to(device=self.device, dtype=self.pos_dtype)
        p = f"mm_rand_pos_{name}.mlp"
        w = {k: self.w[f"{p}.{k}"].to(self.pos_dtype) for k in ("0.weight", "0.bias", "2.weight",
                                                                 "2.bias")}
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

    # The family's pieces of a layer; forward, media_kv and forward_joint are shared.
    def norm(self, x, w):  # the decoder's RMSNorm, output in the compute dtype
        return gemma_norm(x, w, self.eps, self.dtype)

    def residual_block(self, W, x, o):
        """The residual stream x after its attention output o (o_proj applied): Gemma2's
        post-attention norm, then the MLP between its pre- and post-feed-forward norms."""
        x = x + gemma_norm(o, W("post_attention_layernorm.weight"), self.eps)
        return x + gemma_norm(self.mlp(W, gemma_norm(x, W("pre_feedforward_layernorm.weight"),
                                                     self.eps, self.dtype)),
                              W("post_feedforward_layernorm.weight"), self.eps)

    def windowed_layer(self, i):  # Gemma2: the sliding window on even layers
        return bool(self.window) and i % 2 == 0

    def media_update(self, W, m, v):
        """A layer's update of media tokens m from their values v [n, KV, hd]: diagonal
        attention (each media token's attention output is its own value), o_proj, then the
        layer's residual block as for text."""
        n = m.shape[0]
        ve = v.repeat_interleave(self.H // self.KV, dim=1).reshape(n, self.H * self.hd)
        return self.residual_block(W, m, linear(ve, W("self_attn.o_proj.weight")))

    @torch.no_grad()
    def media_kv(self, tokens, chunk=8192):
        """Per-layer K/V of one media stream, [L] x ([N, KV, hd], [N, KV, hd])."""
        N = tokens.shape[0]
        KV, hd = self.KV, self.hd
        ks = [torch.empty(N, KV, hd, device=self.device, dtype=self.dtype) for _ in range(self.L)]
        vs = [torch.empty_like(k) for k in ks]
        for r0 in range(0, N, chunk):
            m = (tokens[r0:r0 + chunk].to(self.dtype) * self.embed_scale).to(self.res_dtype)
            n = m.shape[0]
            for i in range(self.L):
                W = self.layer(i)
                h = self.norm(m, W("input_layernorm.weight"))
                k = linear(h, W("self_attn.k_proj.weight")).view(n, KV, hd)
                v = linear(h, W("self_attn.v_proj.weight")).view(n, KV, hd)
                ks[i][r0:r0 + n] = k
                vs[i][r0:r0 + n] = v
                if i + 1 == self.L:
                    break  # the last update feeds nothing
                m = self.media_update(W, m, v)
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

    def qkv(self, W, x):
        """Layer W's input norm and projections of x [T, D]: q [T, H, hd], k and v [T, KV, hd]."""
        h = self.norm(x, W("input_layernorm.weight"))
        return (linear(h, W("self_attn.q_proj.weight")).view(-1, self.H, self.hd),
                linear(h, W("self_attn.k_proj.weight")).view(-1, self.KV, self.hd),
                linear(h, W("self_attn.v_proj.weight")).view(-1, self.KV, self.hd))

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
        H, hd = self.H, self.hd
        x = self.embed(ids)
        pos, causal, windowed = self.text_masks(pos0, T)
        for i in range(self.L):
            W = self.layer(i)
            q, k, v = self.qkv(W, x)
            attn = None
            for mk, mv in (m[i] for m in media if m is not None):
                c = self.attend(q, mk, mv)  # queries without RoPE, no mask
                attn = c if attn is None else attn + c
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            cache["k"][i][pos0:pos0 + T] = k
            cache["v"][i][pos0:pos0 + T] = v
            mask = windowed if self.windowed_layer(i) else causal
            s = self.attend(q, cache["k"][i][:pos0 + T], cache["v"][i][:pos0 + T], mask)
            attn = s if attn is None else attn + s
            # o_proj has no bias: o(text) + o(image) + o(audio), as the official layers add, is o(sum)
            x = self.residual_block(W, x, linear(attn.reshape(T, H * hd), W("self_attn.o_proj.weight")))
        cache["len"] = pos0 + T
        return self.logits(x if all_logits else x[-1:])

    def embed(self, ids):
        idt = torch.tensor(ids, device=self.device, dtype=torch.long)
        return (self.w["model.embed_tokens.weight"][idt] * self.embed_scale).to(self.res_dtype)

    def text_masks(self, pos0, T):
        """Positions of T new text tokens after pos0, and [T, pos0+T] masks: causal, and causal
        within the sliding window W (query t sees keys t-W..t, FlashAttention-2's (W, W))."""
        pos = torch.arange(pos0, pos0 + T, device=self.device)
        kpos = torch.arange(0, pos0 + T, device=self.device)
        causal = kpos[None, :] <= pos[:, None]
        windowed = causal & (pos[:, None] - kpos[None, :] <= self.window) if self.window else causal
        return pos, causal, windowed

    def logits(self, x):
        x = self.norm(x, self.w["model.norm.weight"])
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        y = linear(x, head).float()
        if self.final_cap:
            y = torch.tanh(y / self.final_cap) * self.final_cap
        return y

    @torch.no_grad()
    def forward_joint(self, ids, media_tokens):
        """The official layer loop written the other way round (for --self-check): media tokens
        travel through the layers beside the text, their K/V computed in each layer, no caches."""
        T = len(ids)
        H, hd = self.H, self.hd
        x = self.embed(ids)
        ms = [(m.to(self.dtype) * self.embed_scale).to(self.res_dtype) for m in media_tokens]
        pos, causal, windowed = self.text_masks(0, T)
        for i in range(self.L):
            W = self.layer(i)
            q, k, v = self.qkv(W, x)
            mask = windowed if self.windowed_layer(i) else causal
            attn = self.attend(self.rope(q, pos), self.rope(k, pos), v, mask)
            for j, m in enumerate(ms):
                _, mk, mv = self.qkv(W, m)
                attn = attn + self.attend(q, mk, mv)
                ms[j] = self.media_update(W, m, mv)
            x = self.residual_block(W, x, linear(attn.reshape(T, H * hd), W("self_attn.o_proj.weight")))
        return self.logits(x)


# ---------------------------------------------------------------------------------------------
# Vidi-7B (github bytedance/vidi, Vidi_7B/; docs/vidi-7b.md): what differs from Vidi1.5-9B

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's image processor defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def mistral_norm(x, w, eps, dtype):
    """w * rmsnorm(x) as MistralRMSNorm: normalised in float32, cast, then scaled."""
    return w * rms(x, eps).to(dtype)


class Vidi7B(Vidi):
    """Mistral decoder with decomposed attention (two norms a layer, SwiGLU, no soft-caps, no
    sqrt(D) scaling, a sliding window on every layer), a 2-D convolution + bilinear image pool,
    a Whisper-width audio pool and the percentage prompt with the video length."""
    family = "vidi-7b"
    layer_norms = ("input_layernorm", "post_attention_layernorm")
    tied_by_default = False  # MistralConfig's tie_word_embeddings

    def __init__(self, model_dir, device, dtype, towers=True):
        super().__init__(model_dir, device, dtype, towers)
        c = self.cfg
        self.scale = self.hd ** -0.5  # FlashAttention's default softmax scale
        self.attn_cap = self.final_cap = 0.0
        self.embed_scale = 1.0
        eos = c.get("eos_token_id", 2)
        self.stop_ids = set(eos) if isinstance(eos, list) else {eos}
        if c.get("hidden_act", "silu") != "silu":
            raise SystemExit(f"hidden_act '{c.get('hidden_act')}' (only silu, Mistral's, is written here)")
        if (c.get("mm_projector_type") or "mlp2x_gelu") != "mlp2x_gelu":
            raise SystemExit(f"mm_projector_type '{c.get('mm_projector_type')}' (only mlp2x_gelu is written here)")
        if c.get("mm_input_type", "video") != "video":
            raise SystemExit(f"mm_input_type '{c.get('mm_input_type')}' (inference.py feeds videos)")
        if towers:
            self.check_glue_shapes()
            self.frame_size = self.pp_size or self.frame_size  # process_images' resize target

    # -- loading ------------------------------------------------------------------------------
    def check_glue_shapes(self):
        """mm_rand_* against the towers' widths (Vidi_7B/model/lmm/dattn/multimodal.py)."""
        D, s, k_a = self.D, self.pool, self.apool
        C, A = self.vision.config.hidden_size, self.audio.config.d_model
        g = self.vision.config.image_size // self.vision.config.patch_size
        if not 1 < s <= g:
            raise SystemExit(f"mm_image_pool_size {s}: must be in 2..{g} (patches per side)")
        k = math.ceil(g / s)
        exp = {"mm_rand_img_pool.conv.weight": [C, C, k, k], "mm_rand_aud_pool.weight": [A, A, k_a],
               "mm_rand_img_norm.weight": [D], "mm_rand_aud_norm.weight": [D],
               "mm_rand_llm_norm.weight": [D]}
        for n, d_in in (("img", C), ("aud", A)):
            p = f"mm_rand_{n}_projector.model."
            exp.update({p + "0.weight": [D, d_in], p + "0.bias": [D], p + "2.weight": [D, D],
                        p + "2.bias": [D]})
        for n in ("h", "w", "t"):
            for j in ("0", "2"):
                exp.update({f"mm_rand_pos_{n}.mlp.{j}.weight": [D, D], f"mm_rand_pos_{n}.mlp.{j}.bias": [D]})
        self.check_shapes(exp, f"the towers (vision {C} wide, {g}x{g} patches; audio {A} wide)")

    def build_vision(self, sd):
        """SigLIP or CLIP, chosen by the tower's name as the official DattnMMModel does."""
        ref = str(self.cfg.get("mm_vision_tower") or "")
        cfg, src = tower_config(self.dir, ref, BUILTIN_SIGLIP, "vision")
        cfg = cfg.get("vision_config", cfg)  # a whole CLIP/SigLIP model's config nests the tower's
        kind = "clip" if "clip" in ref.lower() else "siglip" if "siglip" in ref.lower() else None
        if kind is None:
            mt = str(cfg.get("model_type", "siglip"))
            kind = "clip" if "clip" in mt else "siglip"
            log(f"vision tower '{ref}': the official loader wants 'clip' or 'siglip' in the name; "
                f"using {kind} from its model_type")
        if kind == "clip" and src == "built-in":
            raise SystemExit(f"CLIP vision tower '{ref}': needs a directory with config.json")
        cfg = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
        self.vision_kind = kind
        # preprocessing constants come from the tower's image processor (preprocessor_config.json)
        pp = os.path.join(src, "preprocessor_config.json") if src != "built-in" else ""
        pp = json.load(open(pp)) if pp and os.path.isfile(pp) else {}
        mean, std = (CLIP_MEAN, CLIP_STD) if kind == "clip" else ((0.5,) * 3, (0.5,) * 3)
        self.pix_mean = torch.tensor(pp.get("image_mean", mean), dtype=torch.float32).view(3, 1, 1)
        self.pix_std = torch.tensor(pp.get("image_std", std), dtype=torch.float32).view(3, 1, 1)
        size = pp.get("size") or {}
        self.pp_size = size.get("height", size.get("shortest_edge")) if isinstance(size, dict) else size
        if kind == "clip":
            from transformers import CLIPVisionConfig, CLIPVisionModel
            model = self.build_tower(CLIPVisionModel, CLIPVisionConfig(**cfg), sd, "mm_vis.", src)
        else:
            from transformers import SiglipVisionConfig, SiglipVisionModel
            model = self.build_tower(SiglipVisionModel, SiglipVisionConfig(**cfg), sd, "mm_vis.", src)
        return model

    def build_audio(self, sd):
        if "whisper" not in str(self.cfg.get("mm_audio_tower") or "").lower():
            log(f"audio tower '{self.cfg.get('mm_audio_tower')}': the official loader wants 'whisper' in the name")
        return super().build_audio(sd)

    # -- glue ---------------------------------------------------------------------------------
    def pixel_values(self, u8):
        """As the tower's HF image processor: x * (1/255) rounded to float32, then (x - mean) / std
        in float32 (process_images resizes to the processor's size first)."""
        x = (u8.double() * (1.0 / 255.0)).float()
        return (x - self.pix_mean.to(x.device)) / self.pix_std.to(x.device)

    @torch.no_grad()
    def vision_features(self, pixels_u8, batch, pixel_values=None):
        """Tower hidden state at select_layer (CLIP: without its class token) on the g x g patch
        grid, Conv2d (kernel ceil(g/s), stride 1, no bias), bilinear resize (align_corners) to
        s x s: [F, C, s, s]. pixels_u8: [F, S, S, 3] uint8 on the CPU."""
        F_ = pixels_u8.shape[0] if pixel_values is None else pixel_values.shape[0]
        w = self.w["mm_rand_img_pool.conv.weight"]
        out = []
        for f0 in range(0, F_, batch):
            if pixel_values is None:
                u8 = torch.from_numpy(pixels_u8[f0:f0 + batch]).to(self.device).permute(0, 3, 1, 2)
                x = self.pixel_values(u8)
            else:
                x = pixel_values[f0:f0 + batch].to(self.device).float()
            hs = self.vision(pixel_values=x.to(self.dtype), output_hidden_states=True).hidden_states
            h = hs[self.select_layer]
            if self.vision_kind == "clip":
                h = h[:, 1:]
            b, P, C = h.shape
            g = math.isqrt(P)
            if g * g != P:
                raise SystemExit(f"vision tower gives {P} patches, not a square grid")
            h = h.reshape(b, g, g, C).permute(0, 3, 1, 2)
            h = F.conv2d(h, w)
            h = F.interpolate(h, size=(self.pool, self.pool), mode="bilinear", align_corners=True)
            out.append(h)
        return torch.cat(out)

    # -- decoder ------------------------------------------------------------------------------
    def mlp(self, W, h):  # SwiGLU
        return linear(F.silu(linear(h, W("mlp.gate_proj.weight"))) * linear(h, W("mlp.up_proj.weight")),
                      W("mlp.down_proj.weight"))

    def norm(self, x, w):
        return mistral_norm(x, w, self.eps, self.dtype)

    def residual_block(self, W, x, o):
        """Mistral: no norm after the attention; the MLP after post_attention_layernorm (for
        media tokens too: the official feed_foward)."""
        x = x + o
        return x + self.mlp(W, self.norm(x, W("post_attention_layernorm.weight")))

    def windowed_layer(self, i):  # Mistral: every layer
        return bool(self.window)


FAMILIES = {"vidi1.5": Vidi, "vidi-7b": Vidi7B}


def detect_family(model_dir, forced):
    if forced != "auto":
        return forced
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg.get("model_type") == "dattn_mistral" or "DattnMistralForCausalLM" in (cfg.get("architectures") or []):
        return "vidi-7b"
    if cfg.get("model_type") not in (None, "dattn_gemma2"):
        log(f"model_type '{cfg.get('model_type')}': treated as Vidi1.5-9B (dattn_gemma2)")
    return "vidi1.5"


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


def chat_text_7b(model_dir, content):
    """The chat string as Vidi_7B's preprocess_chat makes it: the checkpoint's chat template
    (tokenizer_config.json, rendered with jinja2 as transformers' apply_chat_template does,
    without a generation prompt) for one user message, with the bos string removed. Without a
    template: Mistral-Instruct's "[INST] {content} [/INST]"."""
    path = os.path.join(model_dir, "tokenizer_config.json")
    tc = json.load(open(path)) if os.path.isfile(path) else {}

    def token(name, default):
        v = tc.get(name, default)
        return (v.get("content", "") if isinstance(v, dict) else v) or ""
    bos = token("bos_token", "<s>")
    tmpl = tc.get("chat_template")
    if isinstance(tmpl, list):  # named templates
        tmpl = next((t["template"] for t in tmpl if t.get("name") == "default"), None)
    if tmpl:
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(msg):
            raise SystemExit(f"chat template: {msg}")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[jinja2.ext.loopcontrols])
        env.globals["raise_exception"] = raise_exception
        text = env.from_string(tmpl).render(
            messages=[{"role": "user", "content": content}], add_generation_prompt=False,
            bos_token=bos, eos_token=token("eos_token", "</s>"), unk_token=token("unk_token", "<unk>"),
            pad_token=token("pad_token", ""))
    else:
        log(f"{path}: no chat_template, using Mistral-Instruct's [INST] ... [/INST]")
        text = f"[INST] {content} [/INST]"
    return text.replace(bos, "") if bos else text


def prompt_ids_7b(model_dir, text, with_media):
    """Vidi_7B's tokenizer_image_token: the chat string split at <image>, each piece tokenised
    with its own <s> of which only the first is kept; <image> itself adds no id (media enter
    through cross-attention)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    chat = chat_text_7b(model_dir, f"<image>\n{text}" if with_media else text)
    ids = [sp.bos_id()]
    for piece in chat.split("<image>"):
        ids += sp.encode(piece)
    return ids, sp


def retrieval_text_7b(query, duration):
    """Vidi_7B/inference.py's question: the length with two decimals, one trailing '.' dropped."""
    q = query[:-1] if query.endswith(".") else query
    return ("Given the frames from a video, answer the time range in percentage that corresponds "
            "to query text split by comma. Video length is: {:.2f} and text query is: {}.".format(duration, q))


def parse_answer_7b(text, duration):
    r"""Vidi_7B/inference.py's reading of the answer: pairs matching ([\d|\.]+)-([\d|\.]+), times the
    duration, printed HH:MM:SS.ss where the seconds are an int printed with {:.2f} (no zero
    padding: 65.7 s reads 00:01:5.00). A match float() refuses (such as "1.2.3") ends the
    official script with ValueError; here it is listed as unparsable."""
    def stamp(t):
        return "{:02d}:{:02d}:{:.2f}".format(int(t / 3600), (int(t) % 3600) // 60, int(t) % 60)
    segments, printed = [], []
    for a, b in re.findall(r"([\d|\.]+)-([\d|\.]+)", text):
        try:
            s, e = float(a) * duration, float(b) * duration
        except ValueError:
            segments.append({"unparsable": f"{a}-{b}"})
            continue
        printed.append(f"{stamp(s)}-{stamp(e)}")
        segments.append({"start_s": s, "end_s": e, "official": printed[-1]})
    return segments, ", ".join(printed)


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


def media_duration(args):
    """Seconds and where they came from: --duration, else the video file."""
    if args.duration is not None:
        return args.duration, "--duration"
    if not args.video:
        raise SystemExit("the Vidi-7B retrieval prompt states the video length: give --video or --duration")
    return video_duration(args.video)


@torch.no_grad()
def self_check(model):
    """Vidi-7B decoder checks on the loaded checkpoint, no video needed:
    1. the text-only decoder against transformers' MistralForCausalLM (eager attention) with the
       same weights: RoPE, sliding window, norms, SwiGLU, grouped K/V heads, lm_head;
    2. media K/V computed once per video (media_kv, as the engine caches them) against media
       tokens travelling through the layers beside the text (forward_joint, the official loop);
    3. decoding token by token through the caches against one forward over the whole prompt.
    Random media tokens stand in for a video. Returns {check: relative error or None when it
    could not run}, all passed."""
    dev, dt = model.device, model.dtype
    # transformers' Mistral normalises and takes the softmax in float32 even for float64 input
    tol = 1e-5 if dt in (torch.float32, torch.float64) else 3e-2
    ids, _ = prompt_ids_7b(model.dir, retrieval_text_7b("a moving colour pattern", 12.012), True)
    T = len(ids)
    if model.window and T <= model.window + 1:
        log(f"self-check: the prompt ({T} tokens) does not cross the sliding window ({model.window})")
    res = {"text_vs_transformers_mistral": None}
    try:
        res["text_vs_transformers_mistral"] = text_vs_transformers(model, ids)
    except ImportError as e:
        log(f"self-check: transformers' Mistral not available ({e}): that check is skipped")
    g = torch.Generator().manual_seed(0)
    tokens = [torch.randn(n, model.D, generator=g, dtype=torch.float64).to(dev, dt) for n in (37, 11)]
    media = [model.media_kv(m) for m in tokens]
    full = model.forward(ids, model.new_cache(T), media, all_logits=True)
    res["media_kv_vs_joint_layers"] = rel_err(full, model.forward_joint(ids, tokens))
    n0 = max(1, T - 12)
    cache = model.new_cache(T)
    rows = [model.forward(ids[:n0], cache, media)[-1]]
    rows += [model.forward([t], cache, media)[-1] for t in ids[n0:]]
    res["incremental_vs_full"] = rel_err(torch.stack(rows), full[n0 - 1:])  # rows n0-1 .. T-1
    ok = all(v is None or v <= tol for v in res.values())
    for k, v in res.items():
        log(f"self-check {k}: " + ("skipped" if v is None else
                                   f"{v:.3e} ({'ok' if v <= tol else 'FAILED'}, tolerance {tol:g})"))
    return res, ok


@torch.no_grad()
def text_vs_transformers(model, ids):
    """Relative error of the text-only logits against transformers' MistralForCausalLM."""
    from transformers import MistralConfig, MistralForCausalLM
    dev, dt, c = model.device, model.dtype, model.cfg
    # transformers' eager/SDPA masks let query t see keys t-W+1..t for sliding_window W, while
    # FlashAttention-2's window (W, W), which the official model uses, reaches t-W: hence W + 1.
    hc = MistralConfig(vocab_size=c["vocab_size"], hidden_size=model.D,
                       intermediate_size=c["intermediate_size"], num_hidden_layers=model.L,
                       num_attention_heads=model.H, num_key_value_heads=model.KV, head_dim=model.hd,
                       hidden_act="silu", max_position_embeddings=c.get("max_position_embeddings", 32768),
                       rms_norm_eps=model.eps, rope_theta=model.theta,
                       sliding_window=model.window + 1 if model.window else None,
                       tie_word_embeddings=bool(c.get("tie_word_embeddings", False)))
    if isinstance(getattr(hc, "rope_parameters", None), dict):  # transformers 5 keeps theta here
        hc.rope_parameters["rope_theta"] = model.theta
    try:
        hc._attn_implementation = "eager"
    except Exception:
        pass
    with torch.device(dev):
        hf = MistralForCausalLM(hc)
    hf = hf.to(dt).eval()
    sd = {k: v for k, v in model.w.items() if k.startswith("model.") or k == "lm_head.weight"}
    missing, _ = hf.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and hc.tie_word_embeddings)]
    if missing:
        raise SystemExit(f"self-check: transformers' Mistral wants {missing[:3]} ...")
    import transformers
    inp = torch.tensor([ids], device=dev)
    ours = model.forward(ids, model.new_cache(len(ids)), [], all_logits=True)
    err = rel_err(ours, hf(input_ids=inp).logits[0].float())
    if err > 1e-5 and model.window:
        # which window transformers agrees with tells an off-by-one from a version difference
        for w in (model.window, model.window + 2):
            hf.config.sliding_window = w
            log(f"self-check diagnosis: transformers {transformers.__version__} with sliding_window {w}: "
                f"{rel_err(ours, hf(input_ids=inp).logits[0].float()):.3e}")
    return err


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint directory (official layout)")
    ap.add_argument("--video", help="video file")
    ap.add_argument("--query", help="retrieval query (wrapped in the retrieval prompt)")
    ap.add_argument("--question", help="free-form question (used verbatim)")
    ap.add_argument("--text-only", action="store_true", help="no media: plain Gemma2/Mistral chat turn")
    ap.add_argument("--family", choices=["auto"] + list(FAMILIES), default="auto",
                    help="model family (auto: from config.json's model_type / architectures)")
    ap.add_argument("--self-check", action="store_true",
                    help="Vidi-7B: check the decoder against transformers' Mistral and itself, then exit")
    ap.add_argument("--duration", type=float,
                    help="video length in seconds instead of the file's (Vidi-7B puts it in the prompt)")
    ap.add_argument("--forced-ids", help="comma-separated ids to teacher-force after the prompt "
                                         "(forced_logits) when no --golden gives them")
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--dtype", choices=["bfloat16", "float16", "float32", "float64"], default="bfloat16",
                    help="compute dtype (the official inference casts everything to float16; float64 "
                         "on the CPU for golden files)")
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

    family = detect_family(args.model, args.family)
    seven = family == "vidi-7b"
    info["family"] = family
    if args.self_check:
        if not seven:
            raise SystemExit("--self-check is written for the vidi-7b family")
        res, ok = self_check(Vidi7B(args.model, device, dtype, towers=False))
        print(json.dumps({"self_check": res, "passed": ok}))
        sys.exit(0 if ok else 1)

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
        text = None if seven else retrieval_text(args.query)  # Vidi-7B's needs the duration
    else:
        raise SystemExit("--query or --question is required")

    golden = st_open(args.golden) if args.golden else {}
    dump = {}

    with sw.stage("load_model"):
        need_towers = with_media and not args.media_from
        model = FAMILIES[family](args.model, device, dtype, towers=need_towers)
        if args.residual == "float32":
            model.res_dtype = torch.float32
    log(f"model loaded: D={model.D} layers={model.L} heads={model.H}/{model.KV} "
        f"({sw.times['load_model']:.2f} s)")

    duration = None
    if text is None:
        duration, info["duration_source"] = media_duration(args)
        text = retrieval_text_7b(args.query, duration)
    ids, sp = (prompt_ids_7b if seven else prompt_ids)(args.model, text, with_media)
    info["prompt_text"] = text
    info["prompt_tokens"] = len(ids)
    dump["prompt_ids"] = torch.tensor(ids, dtype=torch.int64)

    media = []
    t_request = time.perf_counter()
    if with_media:
        if duration is None and (args.video or args.duration is not None):
            duration, info["duration_source"] = media_duration(args)
        if duration is not None:
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
                        args.video, model.frame_size, args.frame_decoder)
            nF = pixel_values.shape[0] if pixel_values is not None else frames.shape[0]
            info["frames"] = nF
            log(f"{nF} frames via {info['frame_decoder']} ({sw.times['decode_frames']:.2f} s)")
            if frames is not None:
                for i in sorted({0, nF - 1}):
                    dump[f"pixel_values_frame{i}"] = model.pixel_values(
                        torch.from_numpy(frames[i]).permute(2, 0, 1))
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

    if "forced_ids" in golden:
        forced = [int(t) for t in golden["forced_ids"]]
    else:
        forced = [int(t) for t in args.forced_ids.split(",")] if args.forced_ids else []
    n_forced = len(forced)
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
        if tok in model.stop_ids or len(gen) == args.max_new_tokens:
            break
        t0 = time.perf_counter()
        last = model.forward([tok], cache, media)[-1]
        sw.sync()
        step_times.append(time.perf_counter() - t0)
    info["request_s"] = time.perf_counter() - t_request
    dump["generated_ids"] = torch.tensor(gen, dtype=torch.int64)
    dump["generated_margins"] = torch.tensor(margins, dtype=torch.float32)
    answer = sp.decode([t for t in gen if not sp.is_control(t) and t not in model.stop_ids])
    info["answer"] = answer
    info["generated_tokens"] = len(gen)
    if duration is not None and seven:
        info["segments"], info["official_output"] = parse_answer_7b(answer.strip(), duration)
    elif duration is not None:
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
