#!/usr/bin/env python3
"""Benchmark peer: times Hugging Face transformers' BlipForConditionalGeneration (PyTorch,
fp32) with the weights of an edgecap GGUF, so edgecap can be compared with HF on the same
machine, the same weights and the same image; or, with --random, with HF's own random init at
BLIP-base shapes (no GGUF, no `gguf` package: what the GPU machine runs).

    hf_peer.py --model FILE.gguf --image IMAGE [--runs N | --serve] [--tokens 20] [--threads T]
    hf_peer.py --random [--device cuda] --runs 5 [--tokens 20]

The weights are read from the GGUF with the `gguf` package and dequantized to f32 (q8_0 weights
become exactly the values edgecap and candle compute with); the config is the file's
`blip.hf_config_json`. Output: see README.md beside this file.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PEER_NAME = "transformers BlipForConditionalGeneration fp32"

# Salesforce/blip-image-captioning-base's config.json values (as benches/support/mod.rs), with
# the text decoder's 12 heads (BlipTextConfig's default is 8).
BLIP_BASE_CONFIG = json.dumps({
    "architectures": ["BlipForConditionalGeneration"], "model_type": "blip", "tie_word_embeddings": True,
    "text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768, "intermediate_size": 3072,
                    "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
                    "layer_norm_eps": 1e-12, "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0},
    "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                      "num_attention_heads": 12, "image_size": 384, "patch_size": 16, "layer_norm_eps": 1e-5},
})


def import_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError:
        # scripts/test.sh installs gguf here (pip --target); append so the venv's numpy wins.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        deps = os.path.join(root, "target", "python-deps", "%d.%d" % sys.version_info[:2])
        sys.path.append(deps)
        try:
            import gguf  # noqa: F401
        except ImportError:
            sys.exit("hf_peer: the gguf package is missing (pip install gguf)")
    import gguf

    return gguf


def read_gguf(path):
    """(config json text, {name: float32 numpy array in PyTorch order})."""
    gguf = import_gguf()
    import numpy as np

    reader = gguf.GGUFReader(path)
    field = reader.fields.get("blip.hf_config_json")
    if field is None:
        sys.exit(f"hf_peer: {path} has no blip.hf_config_json (not an edgecap GGUF)")
    config = bytes(field.parts[field.data[0]]).decode("utf-8")
    tensors = {}
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = tuple(int(n) for n in reversed(t.shape))  # ggml's ne is innermost first
        # A writable copy: the reader's arrays are read-only views of a memory map.
        tensors[t.name] = np.array(data, dtype=np.float32).reshape(shape)
    return config, tensors


def blip_config(config_text):
    from transformers import BlipConfig

    cfg = json.loads(config_text)
    return BlipConfig(
        text_config=cfg.get("text_config", {}),
        vision_config=cfg.get("vision_config", {}),
        **{k: v for k, v in cfg.items() if k not in ("text_config", "vision_config", "architectures", "model_type")},
    )


def build_random_model(seed=0):
    """HF's own init at BLIP-base shapes: the work per caption is the same as the real model's
    (generation is forced to a fixed length), only the words differ."""
    import torch
    from transformers import BlipForConditionalGeneration

    config = blip_config(BLIP_BASE_CONFIG)
    assert config.text_config.num_attention_heads == 12
    torch.manual_seed(seed)
    return BlipForConditionalGeneration(config).eval(), config


def build_model(config_text, tensors):
    import torch
    from transformers import BlipForConditionalGeneration

    config = blip_config(config_text)
    model = BlipForConditionalGeneration(config).eval()
    params = model.state_dict()
    state = {}
    for name, array in tensors.items():
        if name not in params:
            sys.exit(f"hf_peer: tensor {name} of the GGUF is not a parameter of BlipForConditionalGeneration")
        if tuple(params[name].shape) != array.shape:
            sys.exit(f"hf_peer: {name}: GGUF shape {array.shape}, model {tuple(params[name].shape)}")
        state[name] = torch.from_numpy(array)
    missing = set(params) - set(state)
    # Tied to tensors that are in the file (the LM head to the word embeddings and its bias to
    # cls.predictions.bias), or buffers that the checkpoints do not carry either.
    allowed = {
        "text_decoder.cls.predictions.decoder.weight",
        "text_decoder.cls.predictions.decoder.bias",
        "text_decoder.bert.embeddings.position_ids",
    }
    if missing - allowed:
        sys.exit(f"hf_peer: the GGUF lacks {sorted(missing - allowed)[:5]} ...")
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    head = model.text_decoder.cls.predictions
    words = model.text_decoder.bert.embeddings.word_embeddings.weight
    if "text_decoder.cls.predictions.decoder.weight" in state:
        assert torch.equal(head.decoder.weight, state["text_decoder.cls.predictions.decoder.weight"])
    else:
        assert torch.equal(head.decoder.weight, words)
    return model, config


def pixel_values(path, size):
    """BlipProcessor's preprocessing: RGB, PIL bicubic resize to size x size, /255, CLIP mean/std."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    try:
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil as Proc
    except ImportError:
        from transformers import BlipImageProcessor as Proc
    return Proc(size={"height": size, "width": size})(images=image, return_tensors="pt").pixel_values


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="edgecap GGUF (any dtype)")
    p.add_argument("--image", help="image file (with --random: default a fixed random tensor)")
    p.add_argument("--random", action="store_true",
                   help="HF's random init at BLIP-base shapes (text heads 12) instead of --model's weights")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--runs", type=int, default=0, help="timed runs, then one JSON line")
    p.add_argument("--serve", action="store_true", help="one timed run per 'run' line on stdin")
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    if (args.runs > 0) == args.serve:
        p.error("give exactly one of --runs N (N >= 1) or --serve")
    if args.random == bool(args.model):
        p.error("give exactly one of --model FILE.gguf or --random")
    if not args.random and not args.image:
        p.error("--image is required with --model")

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    if args.random:
        model, config = build_random_model()
    else:
        config_text, tensors = read_gguf(args.model)
        model, config = build_model(config_text, tensors)
        del tensors
    model = model.to(device)
    size = config.vision_config.image_size
    if args.image:
        px = pixel_values(args.image, size)
    else:
        px = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    px = px.to(device)
    load_ms = (time.perf_counter() - t0) * 1e3
    gen = dict(max_new_tokens=args.tokens, min_new_tokens=args.tokens, num_beams=1, do_sample=False)
    where = "CUDA " + torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    peer = f"{PEER_NAME} on {where} (transformers {transformers.__version__}, torch {torch.__version__})"
    # The decoder's cross-attention K/V projections of the image tokens: edgecap's GPU bench
    # counts them in its vision figure (vision_kv_ms), HF computes them inside generate's first step.
    cross = [model.get_submodule(f"text_decoder.bert.encoder.layer.{i}.crossattention.self")
             for i in range(config.text_config.num_hidden_layers)]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run():
        with torch.inference_mode():
            sync()
            t = time.perf_counter()
            image = model.vision_model(pixel_values=px)[0]
            sync()
            vision_ms = (time.perf_counter() - t) * 1e3
            for attn in cross:
                attn.key(image)
                attn.value(image)
            sync()
            vision_kv_ms = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            out = model.generate(pixel_values=px, **gen)
            sync()
            caption_ms = (time.perf_counter() - t) * 1e3
        ids = out[0].tolist()[1:]  # [DEC] excluded, as candle-peer reports them
        if len(ids) != args.tokens:
            sys.exit(f"hf_peer: generate gave {len(ids)} new tokens, not {args.tokens}")
        return vision_ms, caption_ms, ids, vision_kv_ms

    def median(xs):
        s = sorted(xs)
        return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2 if s else None

    def line(runs):
        r3 = lambda x: round(x, 3)  # noqa: E731
        n = max(args.tokens, 1)
        fields = {
            "vision_ms": [v for v, _, _, _ in runs],
            "vision_kv_ms": [k for _, _, _, k in runs],
            "caption_ms": [c for _, c, _, _ in runs],
            "per_token_ms": [(c - v) / n for v, c, _, _ in runs],
            "per_token_kv_ms": [(c - k) / n for _, c, _, k in runs],
        }
        return json.dumps({
            "peer": peer,
            **{k: [r3(x) for x in v] for k, v in fields.items()},
            "median": {k: r3(median(v)) for k, v in fields.items()},
            "tokens": args.tokens,
            "ids": runs[-1][2] if runs else [],
            "threads": torch.get_num_threads(),
            "device": str(device),
            "load_ms": r3(load_ms),
        })

    run()  # warm-up: page-in, allocator, oneDNN/OpenMP pools
    if args.serve:
        print(json.dumps({"ready": True, "peer": peer, "load_ms": round(load_ms, 1), "image_size": size,
                          "threads": torch.get_num_threads()}), flush=True)
        for request in sys.stdin:
            if request.strip() == "run":
                print(line([run()]), flush=True)
            elif request.strip() in ("quit", "exit"):
                break
    else:
        print(line([run() for _ in range(args.runs)]), flush=True)


if __name__ == "__main__":
    main()
