#!/usr/bin/env python3
"""Writes a tiny random-weight Vidi-7B checkpoint in the official layout (docs/vidi-7b.md §1),
for tests and golden files. Python standard library only: it runs on the dev box and on the
GPU machine and gives the same bytes on both for the same seed.

    python3 tools/make_tiny_vidi7b.py --out DIR [--seed 7]

DIR (new or empty) receives:
- config.json: a Mistral config with model_type `dattn_mistral` and the mm_* keys;
- model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json (bf16);
- siglip_tower/ and whisper_tower/ with config.json and preprocessor_config.json: the towers
  are named by directory, as in ../shared/golden/tiny-a, and the names hold "siglip" and
  "whisper" because the official loader picks the tower classes by those words;
- tokenizer.model: a SentencePiece BPE model laid out like Llama/Mistral v0.1's
  (<unk> 0, <s> 1, </s> 2, the 256 byte pieces 3..258, byte fallback, dummy prefix, no
  normalisation; "[INST]" is plain text), whose merges are learnt here from a few English
  sentences so that words become multi-character tokens; tokenizer_config.json with a
  Mistral-Instruct chat template; generation_config.json.

Sizes are chosen to catch mix-ups, not to mean anything: D 96, 4 layers, 4 query heads of
24 with 2 K/V heads, MLP 160, vocabulary 600, sliding window 16 (the retrieval prompt is
longer, so prefill and decoding cross the window), SigLIP 48 wide x 3 layers, Whisper 40
wide x 2 layers, image pool 5 (a 6x6 convolution takes 27x27 patches to 22x22, then a
bilinear resize to 5x5), audio pool 5.
"""
import argparse
import json
import math
import os
import random
import struct
import sys

D, LAYERS, HEADS, KV_HEADS, MLP = 96, 4, 4, 2, 160
HEAD_DIM = D // HEADS
VOCAB = 600
WINDOW = 16
IMAGE_POOL, AUDIO_POOL = 5, 5
VISION = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
              image_size=384, patch_size=14, num_channels=3, layer_norm_eps=1e-6,
              hidden_act="gelu_pytorch_tanh", model_type="siglip_vision_model")
AUDIO = dict(d_model=40, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=72,
             decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=72, num_mel_bins=128,
             max_source_positions=1500, max_target_positions=448, vocab_size=64,
             activation_function="gelu", model_type="whisper")
MEL_BINS = AUDIO["num_mel_bins"]


def llm_config():
    return {
        "architectures": ["DattnMistralForCausalLM"],
        "model_type": "dattn_mistral",
        "hidden_size": D, "intermediate_size": MLP, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "vocab_size": VOCAB, "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "sliding_window": WINDOW, "max_position_embeddings": 32768, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
        "mm_vision_tower": "siglip_tower", "mm_audio_tower": "whisper_tower",
        "mm_vision_select_layer": -2, "mm_image_pool_size": IMAGE_POOL,
        "mm_audio_pool_size": AUDIO_POOL, "mm_time_interval": 10000, "mm_std": 0.02,
        "mm_projector_type": "mlp2x_gelu", "mm_input_type": "video",
        "mm_image_aspect_ratio": "resize", "mm_splits": 1,
    }


# ---------------------------------------------------------------------------------------------
# tensors: (name, shape, kind); kind decides the random initialisation

def tensor_list():
    t = []

    def add(name, shape, kind="matrix"):
        t.append((name, list(shape), kind))

    def add_linear(name, d_out, d_in):  # nn.Linear with bias
        add(name + ".weight", [d_out, d_in])
        add(name + ".bias", [d_out], "bias")
    # decoder (Mistral names)
    add("model.embed_tokens.weight", [VOCAB, D], "embedding")
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        add(p + "self_attn.q_proj.weight", [HEADS * HEAD_DIM, D])
        add(p + "self_attn.k_proj.weight", [KV_HEADS * HEAD_DIM, D])
        add(p + "self_attn.v_proj.weight", [KV_HEADS * HEAD_DIM, D])
        add(p + "self_attn.o_proj.weight", [D, HEADS * HEAD_DIM])
        add(p + "mlp.gate_proj.weight", [MLP, D])
        add(p + "mlp.up_proj.weight", [MLP, D])
        add(p + "mlp.down_proj.weight", [D, MLP])
        add(p + "input_layernorm.weight", [D], "scale")
        add(p + "post_attention_layernorm.weight", [D], "scale")
    add("model.norm.weight", [D], "scale")
    add("lm_head.weight", [VOCAB, D], "head")
    # vision tower: SiglipVisionModel names under the official nesting
    C, Iv, P = VISION["hidden_size"], VISION["intermediate_size"], VISION["patch_size"]
    side = VISION["image_size"] // P
    v = "model.mm_vis.vision_model."
    add(v + "embeddings.patch_embedding.weight", [C, VISION["num_channels"], P, P])
    add(v + "embeddings.patch_embedding.bias", [C], "bias")
    add(v + "embeddings.position_embedding.weight", [side * side, C])
    for j in range(VISION["num_hidden_layers"]):
        p = f"{v}encoder.layers.{j}."
        for n in ("layer_norm1", "layer_norm2"):
            add(p + n + ".weight", [C], "scale")
            add(p + n + ".bias", [C], "bias")
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            add_linear(p + f"self_attn.{n}", C, C)
        add_linear(p + "mlp.fc1", Iv, C)
        add_linear(p + "mlp.fc2", C, Iv)
    add(v + "post_layernorm.weight", [C], "scale")
    add(v + "post_layernorm.bias", [C], "bias")
    # the pooling head: present in released SigLIP towers, unused by Vidi
    add(v + "head.probe", [1, 1, C])
    add(v + "head.attention.in_proj_weight", [3 * C, C])
    add(v + "head.attention.in_proj_bias", [3 * C], "bias")
    add_linear(v + "head.attention.out_proj", C, C)
    add(v + "head.layernorm.weight", [C], "scale")
    add(v + "head.layernorm.bias", [C], "bias")
    add_linear(v + "head.mlp.fc1", Iv, C)
    add_linear(v + "head.mlp.fc2", C, Iv)
    # audio tower: WhisperEncoder names
    A, Fa = AUDIO["d_model"], AUDIO["encoder_ffn_dim"]
    a = "model.mm_aud.encoder."
    add(a + "conv1.weight", [A, MEL_BINS, 3])
    add(a + "conv1.bias", [A], "bias")
    add(a + "conv2.weight", [A, A, 3])
    add(a + "conv2.bias", [A], "bias")
    add(a + "embed_positions.weight", [AUDIO["max_source_positions"], A])
    for j in range(AUDIO["encoder_layers"]):
        p = f"{a}layers.{j}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            add(p + f"self_attn.{n}.weight", [A, A])
            if n != "k_proj":  # Whisper's key projection has no bias
                add(p + f"self_attn.{n}.bias", [A], "bias")
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            add(p + n + ".weight", [A], "scale")
            add(p + n + ".bias", [A], "bias")
        add_linear(p + "fc1", Fa, A)
        add_linear(p + "fc2", A, Fa)
    add(a + "layer_norm.weight", [A], "scale")
    add(a + "layer_norm.bias", [A], "bias")
    # glue (multimodal.py of Vidi_7B)
    k = math.ceil(side / IMAGE_POOL)
    add("model.mm_rand_llm_norm.weight", [D], "scale")
    add("model.mm_rand_img_pool.conv.weight", [C, C, k, k])
    for n, d_in in (("img", C), ("aud", A)):
        add_linear(f"model.mm_rand_{n}_projector.model.0", D, d_in)
        add_linear(f"model.mm_rand_{n}_projector.model.2", D, D)
        add(f"model.mm_rand_{n}_norm.weight", [D], "scale")
    for n in ("w", "h", "t"):
        for j in ("0", "2"):
            add_linear(f"model.mm_rand_pos_{n}.mlp.{j}", D, D)
    add("model.mm_rand_aud_pool.weight", [A, A, AUDIO_POOL])
    return t


class Gauss:
    """N(0, 1) by Box-Muller over random.Random.random(), whose sequence Python keeps stable."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.spare = None

    def __call__(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        u1 = 1.0 - self.r.random()  # (0, 1]
        u2 = self.r.random()
        m = math.sqrt(-2.0 * math.log(u1))
        self.spare = m * math.sin(2.0 * math.pi * u2)
        return m * math.cos(2.0 * math.pi * u2)


def values(kind, shape, g):
    # Weights ~N(0, 1/fan_in) so that every block (attention, cross-attention, media updates,
    # MLPs) moves the residual streams by about as much as they hold, instead of a random
    # model's output being mostly its embedding; lm_head twice that so that logits spread and
    # greedy picks are rarely near-ties; norm scales around 1, biases around 0.
    n = math.prod(shape)
    if kind == "scale":
        return [1.0 + 0.1 * g() for _ in range(n)]
    if kind in ("matrix", "head"):
        std = (2.0 if kind == "head" else 1.0) / math.sqrt(math.prod(shape[1:]))
    else:
        std = {"bias": 0.02, "embedding": 1.0}[kind]
    return [std * g() for _ in range(n)]


def bf16_bytes(xs):
    """Round to nearest even bfloat16, little-endian."""
    out = bytearray()
    for u in struct.unpack(f"<{len(xs)}I", struct.pack(f"<{len(xs)}f", *xs)):
        out += struct.pack("<H", ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF)
    return bytes(out)


def write_safetensors(path, tensors):
    """tensors: [(name, shape, raw bf16 bytes)] -> the safetensors file (JSON header + data)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, raw in tensors:
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, raw in tensors:
            f.write(raw)


# ---------------------------------------------------------------------------------------------
# SentencePiece model (protobuf wire format written by hand, as src/io/tokenizer_model_writer.cpp)

def varint(v):
    v &= (1 << 64) - 1  # negative int32 values take ten bytes, as protobuf encodes them
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, b):
    b = b.encode() if isinstance(b, str) else b
    return varint((n << 3) | 2) + varint(len(b)) + b


def field_f32(n, x):
    return varint((n << 3) | 5) + struct.pack("<f", x)


NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
SPACE = "\u2581"  # SentencePiece's escaped space
CORPUS = (
    "Given the frames from a video, answer the time range in percentage that corresponds "
    "to query text split by comma. Video length is: 12.01 and text query is: a moving colour "
    "pattern. slicing onion. During which time segments in the video can we see a person? "
    "What is the person doing in the kitchen? Describe the scene. The answer is 0.12-0.25, "
    "0.40-0.43 and 0.50-0.75."
)


def learn_merges(text, count):
    """Byte-pair merges over the words of `text` (each word with its leading space marker):
    the most frequent adjacent pair first, ties broken by the pair's text."""
    words = {}
    for w in text.split():
        key = tuple(SPACE + w)
        words[key] = words.get(key, 0) + 1
    merges = []
    while len(merges) < count:
        pairs = {}
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p[0] + p[1]))
        merges.append(best[0] + best[1])
        merged = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


def tokenizer_model(vocab):
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    pieces += [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)]
    chars = [SPACE] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
            [chr(c) for c in range(ord("A"), ord("Z") + 1)] + list("0123456789.,?!'-:;()\"/[]")
    pieces += [(c, 0.0, NORMAL) for c in chars]
    merges = []
    for m in learn_merges(CORPUS, 120):  # one string can come from two different pairs
        if m not in merges and m not in chars:
            merges.append(m)
    # further pieces (space + character, then lower-case pairs) fill the vocabulary
    lower = chars[1:27]
    for m in [SPACE + c for c in chars[1:]] + [a + b for a in lower for b in lower]:
        if m not in merges:
            merges.append(m)
    room = vocab - len(pieces)
    if len(merges) < room:
        raise SystemExit(f"tokenizer: only {len(pieces) + len(merges)} pieces for vocab {vocab}")
    pieces += [(m, -float(r + 1), NORMAL) for r, m in enumerate(merges[:room])]
    model = b""
    for text, score, kind in pieces:
        model += field_bytes(1, field_bytes(1, text) + field_f32(2, score) + field_varint(3, kind))
    trainer = (field_varint(3, 2) +           # model_type BPE
               field_varint(4, len(pieces)) +  # vocab_size
               field_varint(35, 1) +           # byte_fallback
               field_varint(40, 0) + field_varint(41, 1) + field_varint(42, 2) +
               field_varint(43, -1) +          # unk 0, bos 1, eos 2, no pad piece
               field_bytes(45, "<unk>") + field_bytes(46, "<s>") + field_bytes(47, "</s>"))
    normalizer = (field_bytes(1, "identity") +
                  field_varint(3, 1) +  # add_dummy_prefix (Llama/Mistral)
                  field_varint(4, 0) +  # remove_extra_whitespaces off
                  field_varint(5, 1))   # escape_whitespaces
    return model + field_bytes(2, trainer) + field_bytes(3, normalizer)


# A Mistral-Instruct style template: "<s>[INST] {user} [/INST]{answer}</s>".
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                 "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
                 "{{ message['content'] + eos_token }}{% endif %}{% endfor %}")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (new or empty)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if os.path.exists(args.out) and os.listdir(args.out):
        raise SystemExit(f"{args.out}: exists and is not empty")
    for d in ("", "siglip_tower", "whisper_tower"):
        os.makedirs(os.path.join(args.out, d), exist_ok=True)

    write_json(os.path.join(args.out, "config.json"), llm_config())
    write_json(os.path.join(args.out, "siglip_tower", "config.json"), VISION)
    write_json(os.path.join(args.out, "siglip_tower", "preprocessor_config.json"), {
        "image_processor_type": "SiglipImageProcessor", "do_resize": True, "resample": 3,
        "size": {"height": VISION["image_size"], "width": VISION["image_size"]},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]})
    write_json(os.path.join(args.out, "whisper_tower", "config.json"), AUDIO)
    write_json(os.path.join(args.out, "whisper_tower", "preprocessor_config.json"), {
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": MEL_BINS,
        "sampling_rate": 16000, "hop_length": 160, "n_fft": 400, "chunk_length": 30,
        "n_samples": 480000, "nb_max_frames": 3000, "padding_value": 0.0})
    with open(os.path.join(args.out, "tokenizer.model"), "wb") as f:
        f.write(tokenizer_model(VOCAB))
    write_json(os.path.join(args.out, "tokenizer_config.json"), {
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": None, "add_bos_token": True, "add_eos_token": False,
        "legacy": True, "model_max_length": 4096, "padding_side": "right",
        "chat_template": CHAT_TEMPLATE})
    write_json(os.path.join(args.out, "generation_config.json"),
               {"bos_token_id": 1, "eos_token_id": 2})

    g = Gauss(args.seed)
    tensors = [(n, s, bf16_bytes(values(k, s, g))) for n, s, k in tensor_list()]
    half = len(tensors) // 2
    shards = [tensors[:half], tensors[half:]]
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(args.out, fname), shard)
        for name, _, raw in shard:
            weight_map[name] = fname
            total += len(raw)
    write_json(os.path.join(args.out, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})
    print(f"make_tiny_vidi7b: {len(tensors)} tensors, {total / 1e6:.2f} MB -> {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
