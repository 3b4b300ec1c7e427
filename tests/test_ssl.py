"""HuBERT / wav2vec2 feature extractors: the extractor contract, the three published checkpoint
formats (round-tripped through tiny random models), clear errors, and resumable training."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from torchaudio.models import wav2vec2_model

from conftest import write_tone_corpus
from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.config import Config, SSLUnitsConfig, load_config
from vadusa.tokenizers.ssl import (
    HOP_LENGTH,
    SSLCheckpointError,
    SSLError,
    SSLFeatureExtractor,
    build_ssl_extractor,
    conv_layers,
    load_ssl_checkpoint,
)
from vadusa.training import ssl as ssl_training
from vadusa.training.ssl import train_ssl

FAMILIES = ("hubert", "wav2vec2")
TINY_SCRATCH = {"conv_channels": 16, "layers": 2, "dim": 32, "heads": 2, "ffn_dim": 64,
                "mfcc_clusters": 8, "mask_length": 5, "steps": 6, "batch_seconds": 4.0,
                "max_seconds": 1.5, "warmup_steps": 2, "checkpoint_every": 3, "lr": 1e-3}


def tiny_arch(family: str, layers: int = 2) -> dict:
    """hubert like the base models (group_norm front end); wav2vec2 like LV-60k (layer_norm
    front end with conv bias, pre-LN transformer): both fairseq naming schemes get used."""
    base = family == "hubert"
    return {"extractor_mode": "group_norm" if base else "layer_norm",
            "extractor_conv_layer_config": conv_layers(16), "extractor_conv_bias": not base,
            "encoder_embed_dim": 32, "encoder_projection_dropout": 0.0,
            "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4,
            "encoder_num_layers": layers, "encoder_num_heads": 2,
            "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 64,
            "encoder_ff_interm_dropout": 0.0, "encoder_dropout": 0.0,
            "encoder_layer_norm_first": not base, "encoder_layer_drop": 0.0,
            "aux_num_out": None}


def tiny_model(family: str, layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    model = wav2vec2_model(**tiny_arch(family, layers)).eval()
    with torch.no_grad():  # LayerNorms start at 1/0: perturb them so every tensor matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def units(**kw) -> SSLUnitsConfig:
    return dataclasses.replace(SSLUnitsConfig(weights="checkpoint", layer=2), **kw)


def features(model: torch.nn.Module, wave: torch.Tensor, layer: int) -> torch.Tensor:
    return SSLFeatureExtractor(model, layer, "test").extract(wave)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


WAVE = torch.from_numpy(np.random.default_rng(0).standard_normal(16000 + 123)).float() * 0.1


# --------------------------------------------------------------------------------------------
# The extractor contract.
# --------------------------------------------------------------------------------------------


def tiny_config(tmp_path: Path, family: str, **scratch) -> Config:
    values = TINY_SCRATCH | scratch
    return load_config(overrides=[f"results_dir={tmp_path / 'results'}", "tracking.backend=none",
                                  "device=cpu", f"tokens.{family}.layer=2"]
                       + [f"tokens.{family}.scratch.{k}={v}" for k, v in values.items()])


def scratch_checkpoint(tmp_path: Path, family: str) -> Path:
    """A model.pt as training writes it, with untrained weights."""
    cfg = tiny_config(tmp_path, family)
    model = wav2vec2_model(**ssl_training.scratch_arch(getattr(cfg.tokens, family).scratch))
    path = tmp_path / f"{family}.pt"
    save_checkpoint(path, kind="ssl", config=cfg.to_dict(), state=model.state_dict(),
                    meta={"family": family, "arch": "scratch", "layers": 2, "dim": 32})
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_extractor_contract(tmp_path: Path, family: str) -> None:
    path = scratch_checkpoint(tmp_path, family)
    extractor = build_ssl_extractor(family, SSLUnitsConfig(layer=2), path, torch.device("cpu"))
    assert (extractor.sample_rate, extractor.hop_length, extractor.dim) == (16000, 320, 32)
    frame_rate = extractor.sample_rate / extractor.hop_length
    for samples in (4000, 16000, 16000 + 79, 16000 + 80, 37_531):
        wave = torch.randn(samples) * 0.1
        feats = extractor.extract(wave)
        assert feats.shape[1] == 32 and feats.dtype == torch.float32
        assert abs(len(feats) - samples / 16000 * frame_rate) <= 1.25  # within a frame
        assert abs(len(feats) - samples // HOP_LENGTH) <= 1


def test_layer_selection(tmp_path: Path) -> None:
    path = scratch_checkpoint(tmp_path, "hubert")
    cpu = torch.device("cpu")
    first = build_ssl_extractor("hubert", SSLUnitsConfig(layer=1), path, cpu).extract(WAVE)
    second = build_ssl_extractor("hubert", SSLUnitsConfig(layer=2), path, cpu)
    reference, _ = second.model.extract_features(WAVE[None])
    assert torch.equal(first, reference[0][0]) and torch.equal(second.extract(WAVE),
                                                                reference[1][0])
    assert not torch.allclose(first, reference[1][0])
    with pytest.raises(SSLError, match=r"tokens\.hubert\.layer=3.*2 transformer layers.*1\.\.2"):
        build_ssl_extractor("hubert", SSLUnitsConfig(layer=3), path, cpu)


def test_scratch_checkpoint_of_other_family(tmp_path: Path) -> None:
    path = scratch_checkpoint(tmp_path, "hubert")
    with pytest.raises(SSLCheckpointError, match="'hubert' model, not 'wav2vec2'"):
        build_ssl_extractor("wav2vec2", SSLUnitsConfig(layer=2), path, torch.device("cpu"))


# --------------------------------------------------------------------------------------------
# Published formats, round-tripped.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_torchaudio_state_dict(tmp_path: Path, family: str) -> None:
    source = tiny_model(family)
    torch.save(source.state_dict(), tmp_path / "model.pth")
    loaded = load_ssl_checkpoint(family, units(checkpoint=str(tmp_path / "model.pth")),
                                 arch_params=tiny_arch(family))
    assert torch.equal(features(loaded, WAVE, 2), features(source, WAVE, 2))


@pytest.mark.parametrize("family", FAMILIES)
def test_huggingface_directory(tmp_path: Path, family: str) -> None:
    transformers = pytest.importorskip("transformers")
    config_cls = transformers.HubertConfig if family == "hubert" else transformers.Wav2Vec2Config
    model_cls = transformers.HubertModel if family == "hubert" else transformers.Wav2Vec2Model
    config = config_cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                        num_conv_pos_embedding_groups=4,
                        do_stable_layer_norm=family == "wav2vec2",
                        feat_extract_norm="layer" if family == "wav2vec2" else "group")
    torch.manual_seed(0)
    source = model_cls(config).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.05 * torch.randn_like(p))
    source.save_pretrained(tmp_path / "hf")
    with torch.inference_mode():
        hidden = source(WAVE[None], output_hidden_states=True).hidden_states  # 1 + layers

    loaded = load_ssl_checkpoint(family, units(checkpoint=str(tmp_path / "hf"),
                                               checkpoint_format="huggingface"))
    for layer in (1, 2):
        torch.testing.assert_close(features(loaded, WAVE, layer), hidden[layer][0],
                                   atol=1e-4, rtol=0)

    # the directory's config.json and weights disagree: say what differs
    config_file = tmp_path / "hf" / "config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text())
                                      | {"num_hidden_layers": 3}))
    with pytest.raises(SSLCheckpointError, match="layer count: checkpoint has 2 transformer "
                                                 "layers, its config.json has 3"):
        load_ssl_checkpoint(family, units(checkpoint=str(tmp_path / "hf"),
                                          checkpoint_format="huggingface"))


#: torchaudio name -> fairseq name: the inverse of torchaudio's import_fairseq mapping.
TO_FAIRSEQ = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"encoder\.feature_projection\.projection\.", "post_extract_proj."),
    (r"encoder\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
     "encoder.pos_conv.0.weight_g"),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
     "encoder.pos_conv.0.weight_v"),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
    (r"encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.",
     r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.",
     r"encoder.layers.\1.fc1."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.",
     r"encoder.layers.\1.fc2."),
    (r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.",
     r"encoder.layers.\1.final_layer_norm."),
]


def fairseq_state(model: torch.nn.Module, layer_norm_mode: bool) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        # conv norms: fairseq's Sequential(conv, dropout, norm) or (conv, dropout, (T, LN, T))
        key = re.sub(r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
                     r"feature_extractor.conv_layers.\1.2.1." if layer_norm_mode
                     else r"feature_extractor.conv_layers.\1.2.", key)
        for pattern, replacement in TO_FAIRSEQ:
            key = re.sub(f"^{pattern}", replacement, key)
        out[key] = value
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_fairseq_checkpoint(tmp_path: Path, family: str) -> None:
    source = tiny_model(family)
    state = fairseq_state(source, layer_norm_mode=family == "wav2vec2")
    state["mask_emb"] = torch.zeros(32)  # pre-training parts the loader must drop
    state["final_proj.weight"] = torch.zeros(8, 32)
    if family == "hubert":
        state["label_embs_concat"] = torch.zeros(10, 8)
        blob = {"model": state, "cfg": {"model": {"_name": "hubert", "encoder_layers": 2}}}
    else:  # pre-hydra fairseq kept its options as an argparse.Namespace
        blob = {"model": state, "args": argparse.Namespace(arch="wav2vec2", encoder_layers=2)}
    torch.save(blob, tmp_path / "model.pt")
    loaded = load_ssl_checkpoint(
        family, units(checkpoint=str(tmp_path / "model.pt"), checkpoint_format="fairseq"),
        arch_params=tiny_arch(family))
    assert torch.equal(features(loaded, WAVE, 2), features(source, WAVE, 2))

    # a fairseq file of the other family is refused by name
    other = "wav2vec2" if family == "hubert" else "hubert"
    with pytest.raises(SSLCheckpointError, match=f"not {other}.*tokens.{family}.checkpoint"):
        load_ssl_checkpoint(other, units(checkpoint=str(tmp_path / "model.pt"),
                                         checkpoint_format="fairseq"),
                            arch_params=tiny_arch(family))


# --------------------------------------------------------------------------------------------
# Clear errors.
# --------------------------------------------------------------------------------------------


def test_architecture_mismatch_says_what_differs(tmp_path: Path) -> None:
    torch.save(tiny_model("hubert").state_dict(), tmp_path / "model.pth")
    config = units(checkpoint=str(tmp_path / "model.pth"), arch="base")
    with pytest.raises(SSLCheckpointError) as err:
        load_ssl_checkpoint("hubert", config)
    message = str(err.value)
    assert "layer count: checkpoint has 2 transformer layers, arch 'base' has 12" in message
    assert "width: checkpoint has width 32, arch 'base' has width 768" in message
    assert "tokens.hubert.arch" in message and "tokens.hubert.checkpoint_format" in message

    with pytest.raises(SSLCheckpointError, match="checkpoint has 2 transformer layers, the "
                                                 "custom architecture has 3"):
        load_ssl_checkpoint("hubert", config, arch_params=tiny_arch("hubert", layers=3))
    # same sizes, other front end: the tensors that differ are named
    with pytest.raises(SSLCheckpointError, match=r"tensors missing .*conv_layers\.1\.layer_norm"):
        load_ssl_checkpoint("hubert", config, arch_params=tiny_arch("wav2vec2"))


def test_wrong_format_is_named(tmp_path: Path) -> None:
    torch.save({"model": fairseq_state(tiny_model("hubert"), False)}, tmp_path / "fs.pt")
    with pytest.raises(SSLCheckpointError, match="checkpoint_format=fairseq"):
        load_ssl_checkpoint("hubert", units(checkpoint=str(tmp_path / "fs.pt")))
    torch.save(tiny_model("hubert").state_dict(), tmp_path / "ta.pth")
    with pytest.raises(SSLCheckpointError, match="no 'model' entry.*checkpoint_format"):
        load_ssl_checkpoint("hubert", units(checkpoint=str(tmp_path / "ta.pth"),
                                            checkpoint_format="fairseq"))


@pytest.mark.parametrize("fmt", ["torchaudio", "huggingface", "fairseq"])
def test_missing_checkpoint(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nowhere" / "hubert.pt"
    with pytest.raises(SSLCheckpointError, match=f"{re.escape(str(missing))}.*"
                                                 r"tokens\.wav2vec2\.checkpoint"):
        load_ssl_checkpoint("wav2vec2", units(checkpoint=str(missing), checkpoint_format=fmt))
    with pytest.raises(SSLCheckpointError, match=r"tokens\.wav2vec2\.checkpoint is empty"):
        build_ssl_extractor("wav2vec2", units(checkpoint=""), None, torch.device("cpu"))


# --------------------------------------------------------------------------------------------
# Training from scratch: finite losses, exact resume, a loadable model.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten 1-2 s utterances of gliding tones in noise, written as a vadusa corpus."""
    return write_tone_corpus(tmp_path_factory.mktemp("corpus"))


class Interrupted(Exception):
    pass


def _save_then_die(real_save):
    def save(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Interrupted
    return save


@pytest.mark.parametrize("family", FAMILIES)
def test_train_resume_and_extract(tmp_path: Path, tiny_corpus: Path, family: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(tmp_path, family)
    straight = train_ssl(cfg, family, tiny_corpus, tmp_path / "straight")
    assert straight == tmp_path / "straight" / "model.pt"
    losses = load_checkpoint(tmp_path / "straight" / "last.pt", "ssl-train")["state"]["losses"]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)

    # killed right after the step-3 checkpoint, then started again
    real_save = ssl_training.save_training_state
    monkeypatch.setattr(ssl_training, "save_training_state", _save_then_die(real_save))
    with pytest.raises(Interrupted):
        train_ssl(cfg, family, tiny_corpus, tmp_path / "resumed")
    monkeypatch.setattr(ssl_training, "save_training_state", real_save)
    half = load_checkpoint(tmp_path / "resumed" / "last.pt", "ssl-train")["state"]
    assert half["step"] == 3 and not (tmp_path / "resumed" / "model.pt").exists()
    resumed = train_ssl(cfg, family, tiny_corpus, tmp_path / "resumed")

    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["state"]["losses"] == losses
    a, b = load_checkpoint(straight, "ssl"), load_checkpoint(resumed, "ssl")
    assert a["meta"]["family"] == family and a["meta"]["arch"] == "scratch"
    assert a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    if family == "hubert":
        assert (tmp_path / "resumed" / "mfcc_kmeans.npz").is_file()
    # the curve: one point per LOG_EVERY steps and the last, the same after a resume
    curve = load_checkpoint(tmp_path / "straight" / "last.pt")["state"]["curve"]
    assert [c["step"] for c in curve] == [6]
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["state"]["curve"] == curve
    assert (tmp_path / "straight" / "curve.png").stat().st_size > 0

    extractor = build_ssl_extractor(family, getattr(cfg.tokens, family), straight,
                                    torch.device("cpu"))
    feats = extractor.extract(WAVE)
    assert feats.shape == (len(WAVE) // HOP_LENGTH, 32) and torch.isfinite(feats).all()


def test_another_config_starts_over(tmp_path: Path, tiny_corpus: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    """A last.pt of other training settings is moved aside (named in the message), not
    resumed; one that differs only in checkpoint cadence is resumed."""
    real_save = ssl_training.save_training_state
    monkeypatch.setattr(ssl_training, "save_training_state", _save_then_die(real_save))
    with pytest.raises(Interrupted):
        train_ssl(tiny_config(tmp_path, "wav2vec2"), "wav2vec2", tiny_corpus, tmp_path / "run")
    with pytest.raises(Interrupted):
        train_ssl(tiny_config(tmp_path, "wav2vec2", lr=2e-3), "wav2vec2", tiny_corpus,
                  tmp_path / "run")
    said = capsys.readouterr().out
    assert "tokens.wav2vec2.scratch.lr:" in said and "starting over" in said
    assert load_checkpoint(tmp_path / "run" / "last.stale.pt", "ssl-train")["state"]["step"] == 3
    assert load_checkpoint(tmp_path / "run" / "last.pt", "ssl-train")["state"]["step"] == 3
    monkeypatch.setattr(ssl_training, "save_training_state", real_save)
    train_ssl(tiny_config(tmp_path, "wav2vec2", lr=2e-3, checkpoint_every=2), "wav2vec2",
              tiny_corpus, tmp_path / "run")
    assert "resuming from" in capsys.readouterr().out



@pytest.mark.parametrize("family", FAMILIES)
def test_unmasked_frames_join_the_loss_with_their_weight(tmp_path: Path, family: str) -> None:
    """unmasked_weight w adds w x (the same prediction at unmasked frames); the masked part,
    and so masked_loss and masked_acc, are those of w = 0."""
    torch.manual_seed(0)
    objective = ssl_training.build_objective(
        family, getattr(tiny_config(tmp_path, family, unmasked_weight=1.0).tokens,
                        family).scratch).eval()
    waves = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 12000])
    frames = ssl_training.frames_of(16000)
    labels = torch.randint(0, 8, (2, frames))

    def run(weight: float) -> dict[str, torch.Tensor]:
        if family == "hubert":
            objective.unmasked_weight = weight
        else:  # wav2vec2 reads it from its config
            objective.train_cfg = dataclasses.replace(objective.train_cfg, unmasked_weight=weight)
        torch.manual_seed(1)  # the same masks (and distractors) every time
        with torch.no_grad():
            return objective(waves, lengths, labels)

    plain, half, whole = run(0.0), run(0.5), run(1.0)
    assert torch.equal(plain["masked_loss"], whole["masked_loss"])
    assert torch.equal(plain["masked_acc"], whole["masked_acc"])
    unmasked = whole["loss"] - plain["loss"]
    assert unmasked > 0.1  # a cross-entropy over 8 clusters or 21 candidates, untrained
    assert torch.allclose(half["loss"] - plain["loss"], unmasked / 2, rtol=1e-4)


def test_logmel_targets_are_the_frames_spectra(tmp_path: Path) -> None:
    """contrastive_target logmel: one target per conv frame (the same windows), each the
    frame's log-mel minus its utterance's mean over valid frames, zero past them; fixed (no
    gradient, no parameters) and out of the state dict; the objective trains on them."""
    waves = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 9600])
    frames = ssl_training.frames_of(16000)
    frame_lengths = torch.tensor([frames, ssl_training.frames_of(9600)])
    filters = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, ssl_training.MEL_BANDS,
                                                    16000)
    mel = ssl_training.log_mel_frames(waves, filters, frame_lengths, frames)
    assert mel.shape == (2, frames, ssl_training.MEL_BANDS)
    short = int(frame_lengths[1])
    assert torch.allclose(mel[1, :short].mean(0), torch.zeros(ssl_training.MEL_BANDS),
                          atol=1e-4)
    assert mel[1, short:].abs().max() == 0
    # frame i is samples 320 i .. 320 i + 400 alone: frames 0 and 5 of utterance 0 by hand
    window = torch.hann_window(400)

    def by_hand(i: int) -> torch.Tensor:  # (MEL_BANDS,)
        power = torch.fft.rfft(waves[0, 320 * i:320 * i + 400] * window).abs().pow(2)
        return (power @ filters).clamp_min(1e-6).log()

    assert torch.allclose(mel[0, 5] - mel[0, 0], by_hand(5) - by_hand(0), atol=1e-3)

    cfg = tiny_config(tmp_path, "wav2vec2", contrastive_target="logmel")
    objective = ssl_training.build_objective("wav2vec2", cfg.tokens.wav2vec2.scratch)
    assert objective.target_proj.in_features == ssl_training.MEL_BANDS
    assert not any("mel_filters" in k for k in objective.state_dict())
    out = objective(waves, lengths)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and objective.final_proj.weight.grad.abs().sum() > 0
    assert tiny_config(tmp_path, "wav2vec2").tokens.wav2vec2.scratch.contrastive_target == "logmel"
    conv = ssl_training.build_objective(
        "wav2vec2", tiny_config(tmp_path, "wav2vec2", contrastive_target="conv")
        .tokens.wav2vec2.scratch)
    assert conv.target_proj.in_features == cfg.tokens.wav2vec2.scratch.conv_channels
