"""The CTranslate2 weight reader and the torch Whisper encoder that takes units from any layer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vadusa.tokenizers.ct2_file import CT2FormatError, read_ct2_weights
from vadusa.tokenizers.whisper_encoder import load_whisper_encoder


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict[str, tuple[np.ndarray, int]], spec: str = "WhisperSpec",
              aliases: dict[str, str] | None = None, version: int = 6) -> Path:
    """A model.bin in CTranslate2's layout: {name: (array, dtype id)}."""
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, (array, dtype_id) in variables.items():
        if dtype_id == 5:  # bfloat16: keep the high half of each float32
            raw = (np.asarray(array, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(array).tobytes()
        out += _string(name) + struct.pack("<B", array.ndim)
        out += struct.pack("<" + "I" * array.ndim, *array.shape)
        out += struct.pack("<BI", dtype_id, len(raw)) + raw
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(out)
    return path


def tiny_whisper(rng: np.random.Generator, dim: int = 8, layers: int = 2, n_mels: int = 80
                 ) -> dict[str, tuple[np.ndarray, int]]:
    def f16(*shape: int) -> tuple[np.ndarray, int]:
        return (rng.normal(0, 0.3, shape).astype(np.float16), 4)

    v = {"encoder/conv1/weight": f16(dim, n_mels, 3), "encoder/conv1/bias": f16(dim),
         "encoder/conv2/weight": f16(dim, dim, 3), "encoder/conv2/bias": f16(dim),
         "encoder/layer_norm/gamma": f16(dim), "encoder/layer_norm/beta": f16(dim),
         "encoder/num_heads": (np.array(2, np.int16), 2),
         "encoder/position_encodings/encodings": f16(50, dim)}
    for i in range(layers):
        for part, shapes in {"self_attention": {"linear_0": (3 * dim, dim),
                                                "linear_1": (dim, dim)},
                             "ffn": {"linear_0": (4 * dim, dim),
                                     "linear_1": (dim, 4 * dim)}}.items():
            base = f"encoder/layer_{i}/{part}"
            v[f"{base}/layer_norm/gamma"], v[f"{base}/layer_norm/beta"] = f16(dim), f16(dim)
            for name, shape in shapes.items():
                v[f"{base}/{name}/weight"], v[f"{base}/{name}/bias"] = f16(*shape), f16(shape[0])
    return v


def test_reader_widens_every_dtype_and_follows_aliases(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 4)).astype(np.float32)
    scale = (127 / np.abs(weight).max(axis=1)).astype(np.float32)
    quantized = np.round(weight * scale[:, None]).astype(np.int8)
    write_ct2(tmp_path, {"a/f32": (weight, 0), "a/f16": (weight.astype(np.float16), 4),
                         "a/bf16": (weight, 5), "a/q": (quantized, 1),
                         "a/q_scale": (scale, 0)}, spec="TestSpec", aliases={"b": "a/f32"})
    spec, w = read_ct2_weights(tmp_path)
    assert spec == "TestSpec"
    assert set(w) == {"a/f32", "a/f16", "a/bf16", "a/q", "b"}  # scales folded in, not listed
    assert all(w[k].dtype == np.float32 and w[k].shape == (3, 4) for k in w)
    np.testing.assert_array_equal(w["a/f32"], weight)
    np.testing.assert_array_equal(w["b"], weight)
    np.testing.assert_allclose(w["a/f16"], weight, atol=2e-3)
    np.testing.assert_allclose(w["a/bf16"], weight, rtol=1e-2)
    np.testing.assert_allclose(w["a/q"], weight, atol=np.abs(weight).max() / 127)


def test_reader_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CT2FormatError, match="no CTranslate2 model.bin"):
        read_ct2_weights(tmp_path)
    write_ct2(tmp_path, {"x": (np.zeros(2, np.float32), 0)}, version=3)
    with pytest.raises(CT2FormatError, match="binary version 3"):
        read_ct2_weights(tmp_path)
    (tmp_path / "model.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:30])
    with pytest.raises(CT2FormatError):
        read_ct2_weights(tmp_path)
    write_ct2(tmp_path, {"x": (np.zeros(2, np.float32), 0)}, spec="TransformerSpec")
    with pytest.raises(CT2FormatError, match="not a Whisper model"):
        load_whisper_encoder(tmp_path)


def test_encoder_layers_and_the_final_norm(tmp_path: Path) -> None:
    write_ct2(tmp_path, tiny_whisper(np.random.default_rng(1)))
    encoder = load_whisper_encoder(tmp_path)
    assert encoder.num_layers == 2 and encoder.blocks[0].heads == 2
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        first, last, final = encoder(mel, (0, 1, -1))
    assert first.shape == last.shape == final.shape == (1, 10, 8)  # stride 2: 20 -> 10 frames
    torch.testing.assert_close(final, encoder.norm(last))  # -1 is the last block, normalised
    assert not torch.allclose(first, last)
    # a block's state does not depend on which later layers were asked for
    with torch.no_grad():
        (again,) = encoder(mel, (0,))
    torch.testing.assert_close(again, first)
    with pytest.raises(ValueError, match="blocks 0..1"):
        encoder(mel, (2,))


def test_torch_encoder_matches_ctranslate2_on_the_real_model() -> None:
    """The torch encoder's final output is CTranslate2's ``encode`` (int8 there, float32 here)
    on the offline Whisper tiny.en."""
    from vadusa.eval.judge import whisper_model_dir
    from vadusa.tokenizers.whisper import WhisperEncoderFeatures

    model_dir = whisper_model_dir("tiny.en")  # the units' encoder (not the judge of record)
    reference = WhisperEncoderFeatures(model_dir, subtract_silence=False)
    ours = WhisperEncoderFeatures(model_dir, subtract_silence=False, layer=3)
    t = torch.arange(16000) / 16000
    noise = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    wave = 0.3 * torch.sin(2 * torch.pi * 220 * t) * (t < 0.5) + 0.01 * noise
    with torch.no_grad():
        (final,) = ours.encoder(torch.from_numpy(
            reference.model.feature_extractor(wave.numpy())[:, :100])[None], (-1,))
    expected = reference.extract(wave)
    assert final.shape[1:] == expected.shape == (50, 384)
    cosine = torch.nn.functional.cosine_similarity(final[0], expected, dim=1)
    assert cosine.min() > 0.98, cosine.min()
    assert ours.extract(wave).shape == expected.shape  # an inner layer, the same frames


def test_a_kmeans_of_another_layer_is_refused(tmp_path: Path) -> None:
    """Two Whisper layers have the same width, so only the recorded settings tell their
    k-means apart: tokenizing layer -1 features with a layer-2 k-means is an error."""
    from vadusa.config import load_config
    from vadusa.tokenizers.base import TokenizerError
    from vadusa.tokenizers.kmeans import KMeansQuantizer
    from vadusa.tokenizers.registry import kmeans_tokenizer

    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tokens.whisper.layer=-1"])
    settings = {"layer": 2, "subtract_silence": True, "pool": 1}
    KMeansQuantizer(np.zeros((4, 384), np.float32), {"features": settings}).save(
        tmp_path / "kmeans.npz")
    with pytest.raises(TokenizerError, match="rerun `vadusa fit-kmeans --family whisper`"):
        kmeans_tokenizer(cfg, "whisper", tmp_path / "kmeans.npz")
    layer2 = load_config(overrides=[f"results_dir={tmp_path}", "tokens.whisper.layer=2"])
    tokenizer = kmeans_tokenizer(layer2, "whisper", tmp_path / "kmeans.npz")
    assert tokenizer.extractor.settings == settings
