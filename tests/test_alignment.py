"""Text alignment by durations: the aligner, the duration model, frame features, and their
contract with decoding (the features are a function of the position alone, so AR decoding,
tree verification and training agree, and tau = 1 still reproduces AR token for token)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_heads import HEADS
from test_train_base import tiny_cfg, tiny_data
from vadusa.cli import main
from vadusa.config import DecodingConfig
from vadusa.data.durations import read_durations
from vadusa.data.text import SymbolTable
from vadusa.decoding.run import decode_prefix
from vadusa.model.aligner import (
    AlignerConfig,
    PhoneRecognizer,
    durations_from_alignment,
    force_align,
    spoken,
)
from vadusa.model.loading import SynthesisInputError, load_tts, synthesis_prefix
from vadusa.model.transformer import Transformer
from vadusa.model.tts import END, INSIDE, LEAD, SEGMENT_OFFSET, build_sequence, frame_features
from vadusa.training.aligner import train_aligner
from vadusa.training.durations import train_durations
from vadusa.training.heads import train_heads
from vadusa.training.tts import TTSData, train_base

ALIGN = ("model.alignment=duration", "align.steps=60", "align.batch_frames=400",
         "align.dim=32", "align.hidden=32", "align.lr=1e-2", "align.warmup_steps=5",
         "align.figure_utterances=0", "durations.steps=40", "durations.dim=32",
         "durations.batch_size=8", "durations.warmup_steps=2")


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy corpus through the whole alignment chain: aligner, duration model, a base
    model trained with durations, and frozen draft heads on it."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("aligned")
    corpus, tokens = tiny_data(tmp)
    cfg = tiny_cfg(tmp, "train.steps=150", "model.dropout=0.0", *HEADS, *ALIGN)
    qa = train_aligner(cfg, "toy", corpus, tokens, tmp / "durations")
    durations = train_durations(cfg, corpus, tmp / "durations", tmp / "dm")
    base = train_base(cfg, "toy", corpus, tokens, tmp / "base", durations_dir=tmp / "durations",
                      duration_model=durations)
    heads = train_heads(cfg, base, corpus, tokens, tmp / "frozen",
                        durations_dir=tmp / "durations")
    return {"tmp": tmp, "corpus": corpus, "tokens": tokens, "qa": qa, "base": base,
            "heads": heads, "cfg": cfg, "durations": tmp / "durations"}


# -- frame features -----------------------------------------------------------------------------

def test_frame_features_follow_the_durations() -> None:
    text = [5, 0, 7]  # symbol 5, a space (unspoken), symbol 7
    rows = frame_features(text, lead=1, durations=[2, 0, 3], rows=9)  # 6 frames + 3 past
    cur, prev, nxt, since, until = rows.T.tolist()
    a, b = SEGMENT_OFFSET + 5, SEGMENT_OFFSET + 7
    assert cur == [LEAD, a, a, b, b, b, END, END, END]
    assert prev == [LEAD, LEAD, LEAD, a, a, a, b, b, b]
    assert nxt == [a, b, b, END, END, END, END, END, END]
    assert since == [1, 1, 2, 1, 2, 3, 1, 2, 3]  # frames into the segment, + 1
    assert until == [1, 2, 1, 3, 2, 1, 1, 1, 1]  # frames before its end, + 1
    long = frame_features([5], lead=0, durations=[50], rows=50)
    assert long[:, 3].max() == INSIDE and long[:, 4].max() == INSIDE  # counts saturate


def test_training_and_synthesis_give_each_position_the_same_features() -> None:
    from vadusa.model.tts import TTSVocab  # noqa: PLC0415

    vocab = TTSVocab(n_symbols=10, n_units=16, n_speakers=2)
    text, durations = [3, 0, 4, 6], (2, [3, 0, 2, 1])
    speech = list(range(8))
    train = build_sequence(vocab, 1, [], text, [], speech, durations=durations)
    synth = build_sequence(vocab, 1, [], text, [], None, durations=durations)
    assert len(train.frames) == len(train.input_ids)
    assert len(synth.frames) > len(train.frames)  # room for decoding to run late
    # the prefix ends in bos; every position of the training sequence reads the same row
    assert torch.equal(train.frames, synth.frames[:len(train.frames)])
    first = len(synth.input_ids) - 1  # bos: it predicts frame 0
    assert train.frames[:first].abs().sum() == 0  # text positions: no frame
    assert train.frames[first, 0] == LEAD and train.frames[first + 8, 0] == END
    with pytest.raises(ValueError, match="add up to 8 frames"):
        build_sequence(vocab, 1, [], text, [], speech[:5], durations=durations)


# -- the aligner ----------------------------------------------------------------------------------

def test_forced_alignment_recovers_known_durations_from_peaky_emissions() -> None:
    """A CTC posterior that fires each symbol on the first frame of its span and blanks
    elsewhere: the alignment gives back the spans exactly, unspoken symbols 0."""
    symbols = ("a", "b", " ", "c")
    is_spoken = spoken(symbols)
    text = [0, 1, 2, 3, 0]  # a b ' ' c a
    truth_lead, truth = 3, [4, 2, 0, 5, 3]
    T = truth_lead + sum(truth)
    logits = torch.full((T, 1 + len(symbols)), -8.0)
    logits[:, 0] = 8.0  # blank
    t = truth_lead
    for s, d in zip(text, truth, strict=True):
        if d:
            logits[t, 0], logits[t, s + 1] = -8.0, 8.0
            t += d
    lead, durations = force_align(logits.log_softmax(-1), text, is_spoken)
    assert (lead, durations) == (truth_lead, truth)
    assert durations_from_alignment([2, 5], [0, 2], 3, 9) == (2, [3, 0, 4])


def test_a_trained_recogniser_recovers_constructed_durations(one_thread: None) -> None:
    """Tokens made from known phone spans (each phone its own token, a little noise): after a
    short CTC training, the forced alignment puts almost every boundary within one frame."""
    rng = np.random.default_rng(0)
    n_sym = 6
    is_spoken = spoken(tuple("abcdef"))

    def example() -> tuple[list[int], list[int], list[int]]:
        text = rng.integers(0, n_sym, 5).tolist()
        durations = rng.integers(2, 6, 5).tolist()
        tokens = [int(s) for s, d in zip(text, durations, strict=True) for _ in range(d)]
        noisy = [t if rng.random() > 0.1 else int(rng.integers(0, n_sym)) for t in tokens]
        return text, durations, noisy

    torch.manual_seed(0)
    model = PhoneRecognizer(AlignerConfig(n_tokens=n_sym, n_symbols=n_sym, dim=32, hidden=32,
                                          dropout=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        batch = [example() for _ in range(16)]
        T = max(len(b[2]) for b in batch)
        tokens = torch.tensor([b[2] + [0] * (T - len(b[2])) for b in batch])
        lengths = torch.tensor([len(b[2]) for b in batch])
        labels = torch.tensor([s + 1 for b in batch for s in b[0]])
        loss = F.ctc_loss(model(tokens, lengths).transpose(0, 1), labels, lengths,
                          torch.full((16,), 5), zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    close = total = 0
    for _ in range(20):
        text, truth, tokens = example()
        lp = model(torch.tensor([tokens]), torch.tensor([len(tokens)]))[0].detach()
        lead, durations = force_align(lp, text, is_spoken)
        assert lead + sum(durations) == len(tokens)  # every frame is owned
        starts = np.cumsum([lead] + durations)[:-1]
        true_starts = np.cumsum([0] + truth)[:-1]
        close += int((np.abs(starts - true_starts) <= 1).sum())
        total += len(text)
    assert close / total >= 0.85


def test_align_writes_durations_that_fit_every_utterance(aligned: dict[str, Path]) -> None:
    qa = json.loads(aligned["qa"].read_text())
    assert 0 <= qa["dev_phone_error_rate"] and set(qa["unaligned"]) == {"train", "dev", "test"}
    symbols = SymbolTable()
    data = TTSData(aligned["corpus"], aligned["tokens"], "train", symbols, ["s0", "s1"], 5.0,
                   aligned["durations"])  # checks text and token counts of every utterance
    assert len(data) == 24
    for utt in data.items:
        assert utt.durations.frames == len(utt.tokens)
        for s, d in zip(utt.text, utt.durations.durations, strict=True):
            assert d >= 1 if symbols.symbols[s] not in (" ", "'") else d == 0
    assert set(read_durations(aligned["durations"], "test")) == {f"test{i}" for i in range(4)}


# -- the duration model and synthesis ----------------------------------------------------------

def test_the_checkpoint_plans_durations_and_frames(aligned: dict[str, Path]) -> None:
    bundle = load_tts(aligned["base"])
    assert bundle.alignment == "duration" and bundle.durations is not None
    prefix = synthesis_prefix(bundle, "one two.", "s1", None, 3.0)
    lead, durations = prefix.durations
    ids = bundle.symbols.encode("one two.")
    assert len(durations) == len(ids)
    assert prefix.budget == lead + sum(durations) + INSIDE
    assert len(prefix.frames) >= len(prefix.ids) + prefix.budget
    for s, d in zip(ids, durations, strict=True):  # spaces never own frames
        assert (d == 0) == (bundle.symbols.symbols[s] == " ")


def test_a_symbol_the_duration_model_never_saw_is_a_clear_error(
        aligned: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = load_tts(aligned["base"])
    # the toy corpus only says one..six: "z" never appeared in the durations it learnt from
    with pytest.raises(SynthesisInputError, match="never saw the symbol.* z"):
        synthesis_prefix(bundle, "zero.", "s0", None, 3.0)
    texts = tmp_path / "t.txt"
    texts.write_text("zero.\n")
    assert main(["decode", "--checkpoint", str(aligned["base"]), "--texts", str(texts),
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "never saw the symbol" in capsys.readouterr().err


# -- the decoding contract ------------------------------------------------------------------------

class FrameLog:
    """Records the frame-feature row each forward reads at each position."""

    def __init__(self, model: Transformer) -> None:
        self.rows: dict[int, list[list[int]]] = {}
        self.inner = model.frame_embedding

        def spy(frames: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
            picked = frames[0, input_pos[0].clamp_max(frames.shape[1] - 1)]  # (T, F)
            for p, row in zip(input_pos[0].tolist(), picked.tolist(), strict=True):
                self.rows.setdefault(p, []).append(row)
            return self.inner(frames, input_pos)

        model.frame_embedding = spy


def test_ar_and_tree_decoding_read_the_rows_training_reads(aligned: dict[str, Path]) -> None:
    bundle = load_tts(aligned["heads"])
    prefix = synthesis_prefix(bundle, "four five six.", "s0", None, 3.0)
    logs = {}
    for method in ("ar", "vadusa"):
        log = FrameLog(bundle.model)
        decoding = replace(DecodingConfig(), method=method, tree="full:2x2", temperature=0.0)
        result = decode_prefix(bundle, prefix, decoding)
        logs[method] = (log.rows, result.tokens)
        bundle.model.frame_embedding = log.inner
    ar_rows, tree_rows = logs["ar"][0], logs["vadusa"][0]
    assert max(tree_rows) >= len(prefix.ids) and set(ar_rows) & set(tree_rows)
    # what training reads for speech of the planned length, after the same prompt (s0's
    # stored one): the same row at each position
    lead, durations = prefix.durations
    stored = bundle.meta["prompts"]["s0"]
    train = build_sequence(bundle.vocab, 0, list(stored["text"]) + [0],
                           bundle.symbols.encode("four five six."), list(stored["tokens"]),
                           [1] * (lead + sum(durations)), durations=prefix.durations)
    assert torch.equal(train.input_ids[:len(prefix.ids)], prefix.ids)
    for rows in (ar_rows, tree_rows):
        for position, seen in rows.items():
            expected = prefix.frames[min(position, len(prefix.frames) - 1)].tolist()
            assert all(row == expected for row in seen), position  # by position alone
            if position < len(train.input_ids):
                assert train.frames[position].tolist() == expected, position


def test_tau_one_reproduces_ar_token_for_token_with_durations(aligned: dict[str, Path]) -> None:
    bundle = load_tts(aligned["heads"], dtype=torch.float64)
    for i, text in enumerate(("one two three.", "six five four.", "two two one six.")):
        prefix = synthesis_prefix(bundle, text, f"s{i % 2}", None, 3.0)
        sampled = replace(DecodingConfig(), temperature=1.0, seed=3)
        ar = decode_prefix(bundle, prefix, sampled, utterance=i)
        for tree in ("full:2x2", "chain:3"):
            vadusa = decode_prefix(bundle, prefix, replace(sampled, method="vadusa", tau=1,
                                                           tree=tree), utterance=i)
            assert vadusa.tokens == ar.tokens, (text, tree)
            assert vadusa.forwards <= ar.forwards


@pytest.mark.parametrize("stage", ["align", "durations"])
def test_a_killed_run_resumes_where_it_stopped(aligned: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture,
                                               stage: str) -> None:
    """Killed after its first checkpoint, the aligner or the duration model resumes from
    last.pt and ends with the weights of an uninterrupted run."""
    from vadusa.checkpoint import load_checkpoint  # noqa: PLC0415
    from vadusa.training import aligner as aligner_training  # noqa: PLC0415
    from vadusa.training import durations as durations_training  # noqa: PLC0415

    module = aligner_training if stage == "align" else durations_training
    cfg = replace(aligned["cfg"], align=replace(aligned["cfg"].align, steps=12,
                                                checkpoint_every=6),
                  durations=replace(aligned["cfg"].durations, steps=12, checkpoint_every=6))

    def run(out: Path) -> Path:
        if stage == "align":
            train_aligner(cfg, "toy", aligned["corpus"], aligned["tokens"], out)
            return out / "aligner.pt"
        return train_durations(cfg, aligned["corpus"], aligned["durations"], out)

    straight = run(tmp_path / "a")
    real_save = module.save_training_state

    def save_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(module, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(module, "save_training_state", real_save)
    capsys.readouterr()
    resumed = run(tmp_path / "b")
    assert f"resuming from {tmp_path / 'b' / 'last.pt'} at step 6" in capsys.readouterr().out
    a, b = load_checkpoint(straight)["state"], load_checkpoint(resumed)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
