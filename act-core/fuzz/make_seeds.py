#!/usr/bin/env python3
"""Writes the seed corpus of the load_and_run fuzz target (see fuzz_targets/load_and_run.rs for the
input layout): valid structured inputs for the f32, f16 and bf16 base models, with statistics as
LeRobot's legacy buffers or its processor keys, chunk execution and ensembling, one and two threads;
and raw inputs (a single-file checkpoint's header with a config, no tensors)."""
import json
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "load_and_run")

CONFIG = {
    "type": "act",
    "input_features": {
        "observation.state": {"type": "STATE", "shape": [14]},
        "observation.images.top": {"type": "VISUAL", "shape": [3, 32, 32]},
    },
    "output_features": {"action": {"type": "ACTION", "shape": [14]}},
    "dim_model": 16, "n_heads": 2, "dim_feedforward": 24, "n_encoder_layers": 1, "n_decoder_layers": 1,
    "chunk_size": 5, "n_action_steps": 5, "latent_dim": 4, "vision_backbone": "resnet18", "pre_norm": False,
    "feedforward_activation": "relu", "temporal_ensemble_coeff": None,
}


def safetensors(tensors, metadata=None):
    """A safetensors file of f32 tensors: {name: (shape, values)}."""
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def stats(processor, images):
    state = ("observation.state" if processor else "normalize_inputs.buffer_observation_state")
    action = ("action" if processor else "unnormalize_outputs.buffer_action")
    t = {
        f"{state}.mean": ([14], [0.05 * i - 0.3 for i in range(14)]),
        f"{state}.std": ([14], [0.5 + 0.05 * i for i in range(14)]),
        f"{action}.mean": ([14], [0.1 - 0.02 * i for i in range(14)]),
        f"{action}.std": ([14], [0.8 + 0.01 * i for i in range(14)]),
    }
    if images:
        cam = "observation.images.top" if processor else "normalize_inputs.buffer_observation_images_top"
        t[f"{cam}.mean"] = ([3, 1, 1], [0.485, 0.456, 0.406])
        t[f"{cam}.std"] = ([3, 1, 1], [0.229, 0.224, 0.225])
    return safetensors(t)


def structured(dtype, flags, config, stats_file, qpos):
    c = json.dumps(config).encode()
    return (bytes([1, dtype, flags]) + struct.pack("<H", len(c)) + c + struct.pack("<I", len(stats_file)) + stats_file
            + struct.pack(f"<{len(qpos)}f", *qpos))


def main():
    os.makedirs(OUT, exist_ok=True)
    qpos = [0.02 * i for i in range(14)]
    seeds = {}
    for dtype, name in enumerate(["f32", "f16", "bf16"]):
        seeds[f"{name}-chunk-legacy"] = structured(dtype, 1, CONFIG, stats(False, False), qpos)
        seeds[f"{name}-ensemble-processor"] = structured(dtype, 2, CONFIG, stats(True, True), qpos)
    two_cams = json.loads(json.dumps(CONFIG))
    two_cams["input_features"]["observation.images.wrist"] = {"type": "VISUAL", "shape": [3, 48, 40]}
    two_cams["temporal_ensemble_coeff"] = 0.01
    seeds["f32-two-cameras-two-threads"] = structured(0, 4, two_cams, stats(False, True), qpos)
    seeds["raw-header-only"] = bytes([0]) + safetensors({}, {"config": json.dumps(CONFIG), "format": "act-rs"})
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
