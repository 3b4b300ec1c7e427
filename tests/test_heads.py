"""Draft heads: training (frozen and joint), resume, calibration, and VADUSA through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from test_train_base import tiny_cfg, tiny_data
from vadusa.checkpoint import load_checkpoint
from vadusa.cli import main
from vadusa.decoding.tree import load_tree
from vadusa.devices import bf16_decodes_faster
from vadusa.model.draft_heads import DraftHeads
from vadusa.model.loading import load_tts
from vadusa.training import heads as heads_training
from vadusa.training.heads import evaluate_heads, head_losses, train_heads
from vadusa.training.tts import TTSData, train_base

HEADS = ("heads.count=3", "heads.steps=100", "heads.joint_steps=12", "heads.batch_tokens=600",
         "heads.warmup_steps=2", "heads.checkpoint_every=6", "heads.eval_every=50",
         "heads.lr=1e-2", "heads.top_ranks=4", "heads.head_weight_warmup=4")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("heads")
    corpus, tokens = tiny_data(tmp)
    cfg = tiny_cfg(tmp, "train.steps=200", "model.dropout=0.0", *HEADS)
    base = train_base(cfg, "toy", corpus, tokens, tmp / "base")
    frozen = train_heads(cfg, base, corpus, tokens, tmp / "frozen")
    joint = train_heads(cfg, base, corpus, tokens, tmp / "joint", joint=True)
    return {"tmp": tmp, "corpus": corpus, "tokens": tokens, "base": base, "frozen": frozen,
            "joint": joint}


def test_heads_start_as_the_base_head_and_are_independent() -> None:
    head = torch.nn.Linear(8, 5, bias=False)
    heads = DraftHeads(3, 8, 5, head)
    x = torch.randn(2, 4, 8)
    out = heads(x)  # (K, B, T, V)
    assert out.shape == (3, 2, 4, 5)
    for k in range(3):  # zero-initialised residual: every head starts as the base head
        torch.testing.assert_close(out[k], head(x))
    assert heads.heads[0].proj.weight.data_ptr() != heads.heads[1].proj.weight.data_ptr()
    assert heads(x, 2).shape[0] == 2


def test_stacked_heads_draft_what_the_modules_compute() -> None:
    torch.manual_seed(0)
    heads = DraftHeads(4, 8, 5, torch.nn.Linear(8, 5, bias=False))
    for p in heads.parameters():  # trained-looking weights, not the zero/copy initialisation
        torch.nn.init.normal_(p)
    x = torch.randn(8)
    for n in (2, 4):
        torch.testing.assert_close(heads.stacked(n).draft(x), heads(x[None, None], n)[:, 0, 0])


def test_shared_heads_project_through_the_base_head() -> None:
    from vadusa.model.draft_heads import SharedHeads  # noqa: PLC0415

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 5, bias=False)
    heads = SharedHeads(3, 8, 5, head)
    x = torch.randn(2, 4, 8)
    for k in range(3):  # zero-initialised blocks: every head starts as the base head
        torch.testing.assert_close(heads(x)[k], head(x))
    assert [n for n, _ in heads.named_parameters()] == [  # the base head is not theirs
        f"blocks.{k}.linear.{p}" for k in range(3) for p in ("weight", "bias")]
    for p in heads.parameters():
        torch.nn.init.normal_(p)
    stacked = heads.stacked(2)
    assert stacked.proj_weight.data_ptr() == head.weight.data_ptr()  # a view, not a copy
    torch.testing.assert_close(stacked.draft(x[0, 0]), heads(x[:1, :1], 2)[:, 0, 0])
    bias = torch.tensor([0.0, 0.0, -torch.inf, 0.0, 0.0])
    torch.testing.assert_close(stacked.draft(x[0, 0], bias), heads(x[:1, :1], 2)[:, 0, 0] + bias)
    with torch.no_grad():
        head.weight.add_(1.0)  # the base head learns (joint training): the heads see it
    torch.testing.assert_close(heads(x)[0], head(heads.blocks[0](x)))


def test_shared_heads_low_rank_correction_starts_at_zero_and_stacks() -> None:
    from vadusa.model.draft_heads import SharedHeads  # noqa: PLC0415

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 5, bias=False)
    heads = SharedHeads(3, 8, 5, head, rank=2)
    x = torch.randn(2, 4, 8)
    for k in range(3):  # the correction's up side is zero: every head starts as the base head
        torch.testing.assert_close(heads(x)[k], head(x))
    assert heads.down.shape == (3, 8, 2) and heads.up.shape == (3, 2, 5)
    for p in heads.parameters():
        torch.nn.init.normal_(p)
    for k in range(3):  # head k: base head plus x A_k B_k on its block's output
        y = heads.blocks[k](x)
        torch.testing.assert_close(heads(x)[k], head(y) + y @ heads.down[k] @ heads.up[k])
    bias = torch.tensor([0.0, -torch.inf, 0.0, 0.0, 0.0])
    for n in (2, 3):  # the packed draft: the same numbers for the first n heads
        stacked = heads.stacked(n)
        assert stacked.proj_weight.data_ptr() == head.weight.data_ptr()
        torch.testing.assert_close(stacked.draft(x[0, 0]), heads(x[:1, :1], n)[:, 0, 0])
        torch.testing.assert_close(stacked.draft(x[0, 0], bias),
                                   heads(x[:1, :1], n)[:, 0, 0] + bias)


def test_head_k_is_scored_against_the_target_k_steps_later() -> None:
    targets = torch.tensor([[-100, 3, 4, 5, 6, -100]])  # (B, L)
    logits = torch.full((2, 1, 6, 8), -10.0)
    # head 1 at position i must predict targets[i + 1]; head 2 targets[i + 2]
    for i in range(6):
        if i + 1 < 6 and targets[0, i + 1] >= 0:
            logits[0, 0, i, targets[0, i + 1]] = 10
        if i + 2 < 6 and targets[0, i + 2] >= 0:
            logits[1, 0, i, (targets[0, i + 2] + 1) % 8] = 10  # head 2: always rank 1 right
            logits[1, 0, i, targets[0, i + 2]] = 5
    losses, hits, counts = head_losses(logits, targets, 3)
    assert counts.tolist() == [4, 3]  # targets 1..4 seen from 1 and 2 positions back
    assert hits[0].tolist() == [4, 0, 0] and hits[1].tolist() == [0, 3, 0]
    assert losses[0] < 1e-3 < losses[1]


def test_self_distillation_targets_the_bases_distribution_k_steps_later() -> None:
    torch.manual_seed(0)
    targets = torch.tensor([[-100, 3, 4, 5, 6, 2]])  # (B, L)
    heads, base = torch.randn(2, 1, 6, 8), torch.randn(1, 6, 8)  # (K, B, L, V), (B, L, V)
    losses, _, _ = head_losses(heads, targets, 3, teacher=base)
    for k in (1, 2):  # head k at position i learns softmax(base at i + k)
        rows = [i for i in range(6 - k) if targets[0, i + k] >= 0]
        soft = base[0, [i + k for i in rows]].softmax(-1)
        expected = -(soft * heads[k - 1, 0, rows].log_softmax(-1)).sum(-1).mean()
        torch.testing.assert_close(losses[k - 1], expected)
    # a teacher certain of the data's token gives back the plain cross-entropy
    certain = torch.full((1, 6, 8), -1e4).scatter(-1, targets.clamp_min(0)[..., None], 0.0)
    plain, _, _ = head_losses(heads, targets, 3)
    for a, b in zip(head_losses(heads, targets, 3, teacher=certain)[0], plain, strict=True):
        torch.testing.assert_close(a, b)


def test_frozen_heads_learn_and_leave_the_base_alone(trained: dict[str, Path]) -> None:
    base = load_checkpoint(trained["base"])
    blob = load_checkpoint(trained["frozen"], kind="vadusa")
    for name, value in base["state"].items():
        assert torch.equal(value, blob["state"]["model"][name]), name
    meta = blob["meta"]["heads"]
    assert meta["count"] == 3 and meta["mode"] == "frozen"
    assert len(meta["rank_acc"]) == 3 and len(meta["rank_acc"][0]) == 4
    losses = load_checkpoint(trained["frozen"].parent / "last.pt")["state"]["position"]["losses"]
    # the training loss (self-distillation: CE against the base's distribution, whose
    # entropy is its floor) falls by more than a nat per head-sum
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 1.0
    # better than where they started (each head a copy of the base head) on the dev split
    cfg = tiny_cfg(trained["tmp"], "train.steps=200", "model.dropout=0.0", *HEADS)
    bundle = load_tts(trained["base"])
    dev = TTSData(trained["corpus"], trained["tokens"], "dev", bundle.symbols, bundle.speakers,
                  cfg.model.prompt_max_seconds)
    fresh = DraftHeads(3, 32, bundle.vocab.output_size, bundle.model.head)
    before, _ = evaluate_heads(bundle.model, fresh, dev, bundle.vocab, cfg,
                               torch.device("cpu"), cfg.model.prompt, True)
    for k in (1, 2, 3):
        assert meta["dev"][f"dev/head{k}_loss"] < 0.9 * before[f"dev/head{k}_loss"], k
    assert all(meta["dev"][f"dev/head{k}_top5"] >= meta["dev"][f"dev/head{k}_top1"]
               for k in (1, 2, 3))
    bundle = load_tts(trained["frozen"])
    assert bundle.heads is not None and len(bundle.heads) == 3


def test_joint_training_moves_the_base(trained: dict[str, Path]) -> None:
    base = load_checkpoint(trained["base"])
    blob = load_checkpoint(trained["joint"], kind="vadusa")
    assert blob["meta"]["heads"]["mode"] == "joint"
    assert any(not torch.equal(v, blob["state"]["model"][k]) for k, v in base["state"].items())
    assert "dev/loss" in blob["meta"]["dev"]


def test_heads_resume_equals_uninterrupted(trained: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_cfg(trained["tmp"], "train.steps=200", "model.dropout=0.0", *HEADS)
    real_save = heads_training.save_training_state

    def save_then_die(*args, **kwargs):  # noqa: ANN002, ANN003
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(heads_training, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_heads(cfg, trained["base"], trained["corpus"], trained["tokens"], tmp_path)
    monkeypatch.setattr(heads_training, "save_training_state", real_save)
    resumed = load_checkpoint(train_heads(cfg, trained["base"], trained["corpus"],
                                          trained["tokens"], tmp_path))
    straight = load_checkpoint(trained["frozen"])
    for name, value in straight["state"]["heads"].items():
        assert torch.equal(value, resumed["state"]["heads"][name]), name


def test_vadusa_tau_one_decodes_what_ar_decodes_through_the_cli(
        trained: dict[str, Path], tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one two three.\ns1\tfour five six.\nsix one two.\n")
    # float32: token-exact (bfloat16 rounds a one-token step and a tree pass differently)
    common = ["--texts", str(texts), "--set", "decoding.max_tokens_per_symbol=3",
              "--precision", "float32"]
    assert main(["decode", "--checkpoint", str(trained["frozen"]), *common,
                 "--out", str(tmp_path / "ar.jsonl")]) == 0
    assert main(["decode", "--checkpoint", str(trained["frozen"]), *common, "--method",
                 "vadusa", "--tau", "1", "--heads", "2", "--tree", "6",
                 "--out", str(tmp_path / "v.jsonl")]) == 0
    ar = [json.loads(x) for x in (tmp_path / "ar.jsonl").read_text().splitlines()]
    va = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in ar] == [r["tokens"] for r in va]  # sequence for sequence
    assert all(r["tokens"] for r in ar)  # not a trivial match of empty sequences
    assert all(r["method"] == "vadusa" for r in va)
    # drafts were accepted: fewer forwards than AR for the same tokens
    assert sum(r["forwards"] for r in va) < sum(r["forwards"] for r in ar)


def test_bench_compile_races_fixed_shape_steps_that_decode_the_same_tokens(
        trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``vadusa bench --compile``: AR steps and tree passes of the real model (it reads its
    alignment table, padded to the fixed cache) traced into one graph each and run; every
    setting decodes what the eager bench decodes, and the bound's forwards are compiled too."""
    runs = {}
    for mode in ("", "eager"):
        out = tmp_path / f"bench{mode}.json"
        assert main(["bench", "--checkpoint", str(trained["frozen"]), "--split", "test",
                     "--corpus", str(trained["corpus"]), "--tokens", str(trained["tokens"]),
                     "--limit", "2", "--batch-sizes", "2",
                     "--tau", "1", "3", "--heads", "3", "--tree", "6", "--precision",
                     "float32", "--set", "decoding.max_tokens_per_symbol=3", "--out", str(out),
                     *(["--compile", mode] if mode else [])]) == 0
        runs[mode] = {r["setting"]: r for r in json.loads(out.read_text())}
    assert "compiled (eager)" in capsys.readouterr().out
    assert runs[""].keys() == runs["eager"].keys()
    for name, r in runs["eager"].items():
        assert r["compile"] == "eager" and runs[""][name]["compile"] is None
        for key in ("tokens_sha256", "mean_accepted", "accept_length_histogram"):
            assert r[key] == runs[""][name][key], (name, key)  # the same sequences
        assert r["forward_ms"] > 0 or r["batch_size"] > 1
    compiled = runs["eager"]
    assert compiled["ar-b1"]["tokens"] > 0
    for name in ("ar-b2", "vadusa-h3-n6-t1"):  # batched AR and tau = 1: AR's sequences
        assert compiled[name]["tokens_sha256"] == compiled["ar-b1"]["tokens_sha256"], name
    assert compiled["vadusa-h3-n6-t1"]["mean_accepted"] > 1  # drafts were accepted


def test_calibrate_then_bench_with_the_tree(trained: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cal"
    assert main(["calibrate", "--checkpoint", str(trained["frozen"]), "--split", "dev",
                 "--corpus", str(trained["corpus"]), "--tokens", str(trained["tokens"]),
                 "--nodes", "4", "8", "--tau", "2",
                 "--out", str(out)]) == 0
    table = json.loads((out / "acceptance.json").read_text())
    assert table["tau"] == 2 and len(table["table"]) == 3
    assert all(0 <= x <= 1 for row in table["table"] for x in row)
    paths, blob = load_tree(out / "tree-8.json")
    assert len(paths) == 8 and blob["expected_length"] > 1
    # the machine's choice: the size with the most expected tokens per forward time
    machine = table["machine"]
    speed = {int(n): s["expected_length"] / s["forward_ms"] for n, s in machine["trees"].items()}
    assert set(speed) == {4, 8} and machine["fastest"] == max(speed, key=speed.get)
    fastest, blob = load_tree(out / "tree-fastest.json")
    assert len(fastest) == machine["fastest"] and blob["machine"] == machine
    capsys.readouterr()
    bench_json = tmp_path / "bench.json"
    assert main(["bench", "--checkpoint", str(trained["frozen"]), "--split", "test",
                 "--corpus", str(trained["corpus"]), "--tokens", str(trained["tokens"]),
                 "--batch-sizes", "--tau", "1", "3",
                 "--heads", "3", "--tree", "4", str(out / "tree-8.json"), "chain:3", "fastest",
                 "--typical",
                 "--precision", "float32", "--set", "decoding.max_tokens_per_symbol=3",
                 "--out", str(bench_json)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(bench_json.read_text())
    names = [r["setting"] for r in results]
    # where the CPU has bfloat16, AR in bfloat16 races too: the baseline is the faster AR
    other = ["ar-b1-bfloat16"] if bf16_decodes_faster(torch.device("cpu")) else []
    assert names == ["ar-b1", *other, "vadusa-h3-n4-t1", "vadusa-h3-n4-t3", "typical-h3-n4",
                     "vadusa-h3-tree-8-t1", "vadusa-h3-tree-8-t3", "typical-h3-tree-8",
                     "vadusa-h3-chain3-t1", "vadusa-h3-chain3-t3", "typical-h3-chain3",
                     "vadusa-h3-fastest-t1", "vadusa-h3-fastest-t3", "typical-h3-fastest"]
    for name in names:
        assert name in printed
    assert "accept-length histogram" in printed
    by = {r["setting"]: r for r in results}
    fastest_ar = min(["ar-b1", *other], key=lambda name: by[name]["wall_seconds"])
    assert all(r["baseline"] == fastest_ar for r in results)
    assert f"speedup: against {fastest_ar}" in printed
    assert by[fastest_ar]["speedup"] == 1.0 and by["ar-b1"]["mean_accepted"] == 1.0
    assert by["ar-b1"]["precision"] == "float32"
    assert [by[name]["precision"] for name in other] == ["bfloat16"] * len(other)
    assert by["ar-b1"]["tokens"] > 0 and all(r["tokens_sha256"] for r in results)
    for name in names:  # lossless: every tau = 1 tree decodes AR's sequences, drafts accepted
        if name.endswith("-t1"):
            assert by[name]["tokens_sha256"] == by["ar-b1"]["tokens_sha256"], name
            assert by[name]["mean_accepted"] > 1, name
    # every VADUSA row names its tree: 4 nodes of the 3 heads, at most 3 deep
    assert by["vadusa-h3-n4-t1"]["tree_nodes"] == 4
    assert 1 <= by["vadusa-h3-n4-t1"]["tree_depth"] <= 3
    assert "tree_depth" not in by["ar-b1"]
    assert by["vadusa-h3-n4-t3"]["mean_accepted"] >= by["vadusa-h3-n4-t1"]["mean_accepted"]
    assert by["vadusa-h3-n4-t1"]["forwards_per_utterance"] < by["ar-b1"][
        "forwards_per_utterance"]
    # the bound: accepted length x t_1 / t_pass from bare forwards timed in the same run, and
    # the share of it each setting reached per token
    assert "of bound" in printed and "bound: accepted x t_1 / t_pass" in printed
    for r in results:
        assert r["forward_ms"] > 0 and r["bound_context"] > 0
        assert r["bound"] == pytest.approx(r["mean_accepted"] * by[fastest_ar]["forward_ms"]
                                           / r["forward_ms"])
        assert r["bound_fraction"] == pytest.approx(r["rate_speedup"] / r["bound"])
    assert by[fastest_ar]["bound"] == pytest.approx(1.0)


def test_vadusa_needs_heads_and_a_fitting_tree(trained: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one two.\n")
    out = str(tmp_path / "o.jsonl")
    assert main(["decode", "--checkpoint", str(trained["base"]), "--texts", str(texts),
                 "--method", "vadusa", "--out", out]) == 2
    assert "needs draft heads" in capsys.readouterr().err
    assert main(["decode", "--checkpoint", str(trained["frozen"]), "--texts", str(texts),
                 "--method", "vadusa", "--heads", "5", "--out", out]) == 2
    assert "3 draft heads" in capsys.readouterr().err
    assert main(["decode", "--checkpoint", str(trained["frozen"]), "--texts", str(texts),
                 "--method", "vadusa", "--tree", str(tmp_path / "none.json"), "--out",
                 out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", str(trained["base"]), "--texts", str(texts),
                 "--tau", "2"]) == 2
    assert "no draft heads" in capsys.readouterr().err


def test_bfloat16_decoding(trained: dict[str, Path], tmp_path: Path) -> None:
    """decoding.precision=bfloat16: model, heads and KV cache in bfloat16, sampling in float64;
    the log-probabilities stay close to float32's and both methods decode."""
    bundle = load_tts(trained["frozen"], dtype=torch.bfloat16)
    assert bundle.dtype == torch.bfloat16
    assert {p.dtype for p in bundle.heads.parameters()} == {torch.bfloat16}
    full = bundle.to(torch.float32)  # a copy: the bfloat16 bundle stays as it is
    assert full.dtype == torch.float32 and bundle.dtype == torch.bfloat16
    assert bundle.to(torch.bfloat16) is bundle
    seq = torch.randint(0, bundle.model.cfg.vocab_size, (1, 40))
    pos, mask = torch.arange(40)[None], torch.ones(40, 40, dtype=torch.bool).tril()[None]
    with torch.inference_mode():
        low = bundle.model(seq, pos, mask).double().log_softmax(-1)
        high = full.model(seq, pos, mask).double().log_softmax(-1)
    assert (low - high).abs().mean() < 0.05 and (low - high).abs().max() < 0.5

    texts = tmp_path / "texts.txt"
    texts.write_text("one two three.\nsix one two.\n")
    common = ["--texts", str(texts), "--set", "decoding.max_tokens_per_symbol=3",
              "--precision", "bfloat16"]
    for method in ("ar", "vadusa"):
        out = tmp_path / f"{method}.jsonl"
        assert main(["decode", "--checkpoint", str(trained["frozen"]), *common, "--method",
                     method, "--out", str(out)]) == 0
        records = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(records) == 2
        assert all(0 <= t < bundle.vocab.n_units for r in records for t in r["tokens"])
        assert all(r["tokens"] for r in records)


def test_precision_auto_is_bfloat16_only_where_it_decodes_faster(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vadusa.devices import resolve_precision  # noqa: PLC0415

    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == torch.float32
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16
    for native in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert bf16_decodes_faster(cpu) is native
        assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else torch.float32)
    # measured slower on an H100: auto keeps float32 on CUDA
    assert resolve_precision("auto", torch.device("cuda")) == torch.float32
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        resolve_precision("float16", cpu)


def test_decode_prefix_dispatches_on_the_method(trained: dict[str, Path]) -> None:
    """What `vadusa synthesize` runs: one prefix, AR or VADUSA by the config."""
    from dataclasses import replace  # noqa: PLC0415

    from vadusa.config import DecodingConfig  # noqa: PLC0415
    from vadusa.decoding.run import decode_prefix  # noqa: PLC0415
    from vadusa.model.loading import synthesis_prefix  # noqa: PLC0415

    bundle = load_tts(trained["frozen"])
    prefix = synthesis_prefix(bundle, "four five six one.", "s0", None, 3.0)
    ar = decode_prefix(bundle, prefix, DecodingConfig())
    va = decode_prefix(bundle, prefix, replace(DecodingConfig(), method="vadusa",
                                               tree="full:2x2"))
    assert va.tokens == ar.tokens and ar.tokens and va.forwards < ar.forwards


def test_hydra_heads_train_load_calibrate_and_decode_losslessly(trained: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    """heads.kind=hydra end to end: frozen training learns, the checkpoint says its kind and
    loads as Hydra heads, calibration reads them with AR's tokens, and VADUSA at tau 1
    decodes exactly what AR decodes."""
    from vadusa.model.draft_heads import HydraHeads  # noqa: PLC0415

    cfg = tiny_cfg(trained["tmp"], "train.steps=200", "model.dropout=0.0", *HEADS,
                   "heads.kind=hydra", "heads.steps=60")
    path = train_heads(cfg, trained["base"], trained["corpus"], trained["tokens"],
                       tmp_path / "hydra")
    blob = load_checkpoint(path, kind="vadusa")
    assert blob["meta"]["heads"]["kind"] == "hydra"
    losses = load_checkpoint(path.parent / "last.pt")["state"]["position"]["losses"]
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 1.0
    bundle = load_tts(path)
    assert isinstance(bundle.heads, HydraHeads) and len(bundle.heads) == 3
    assert isinstance(load_tts(trained["frozen"]).heads, DraftHeads)  # medusa stays medusa
    assert type(load_tts(trained["frozen"]).heads).kind == "medusa"

    cal = tmp_path / "cal"
    assert main(["calibrate", "--checkpoint", str(path), "--split", "dev", "--corpus",
                 str(trained["corpus"]), "--tokens", str(trained["tokens"]), "--nodes", "6",
                 "--tau", "1", "--out", str(cal)]) == 0
    table = json.loads((cal / "acceptance.json").read_text())["table"]
    assert table[0][0] > 0  # head 1's top candidate is accepted sometimes

    texts = tmp_path / "texts.txt"
    texts.write_text("one two three.\ns1\tfour five six.\nsix one two.\n")
    common = ["--texts", str(texts), "--set", "decoding.max_tokens_per_symbol=3",
              "--precision", "float32"]
    assert main(["decode", "--checkpoint", str(path), *common,
                 "--out", str(tmp_path / "ar.jsonl")]) == 0
    assert main(["decode", "--checkpoint", str(path), *common, "--method", "vadusa",
                 "--tau", "1", "--tree", str(cal / "tree-6.json"),
                 "--out", str(tmp_path / "v.jsonl")]) == 0
    ar = [json.loads(x) for x in (tmp_path / "ar.jsonl").read_text().splitlines()]
    va = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in ar] == [r["tokens"] for r in va]  # sequence for sequence
    assert all(r["tokens"] for r in ar)
    assert sum(r["forwards"] for r in va) < sum(r["forwards"] for r in ar)

    # raced beside the MEDUSA heads in one bench run, named after the heads' folder
    bench_json = tmp_path / "bench.json"
    assert main(["bench", "--checkpoint", str(trained["frozen"]), "--also-heads", str(path),
                 "--texts", str(texts), "--batch-sizes", "--tau", "1", "--heads", "3",
                 "--tree", "4", "--precision", "float32", "--set",
                 "decoding.max_tokens_per_symbol=3", "--out", str(bench_json)]) == 0
    by = {r["setting"]: r for r in json.loads(bench_json.read_text())}
    assert {"ar-b1", "vadusa-h3-n4-t1", "hydra-h3-n4-t1"} <= set(by)
    assert by["hydra-h3-n4-t1"]["heads_from"] == "hydra"
    assert by["ar-b1"]["tokens"] > 0  # the same base, lossless: AR's sequences
    assert by["hydra-h3-n4-t1"]["tokens_sha256"] == by["ar-b1"]["tokens_sha256"]
    assert by["hydra-h3-n4-t1"]["mean_accepted"] > 1
    assert by["hydra-h3-n4-t1"]["bound"] > 0


def test_shared_heads_train_frozen_and_joint_and_decode_losslessly(trained: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """heads.kind=shared (with a rank-4 correction): frozen training learns the blocks and
    corrections and leaves the base head alone, the checkpoint loads as shared heads of that
    rank, and VADUSA at tau 1 decodes what AR decodes."""
    from dataclasses import replace  # noqa: PLC0415

    from vadusa.config import DecodingConfig  # noqa: PLC0415
    from vadusa.decoding.run import decode_prefix  # noqa: PLC0415
    from vadusa.model.draft_heads import SharedHeads  # noqa: PLC0415
    from vadusa.model.loading import synthesis_prefix  # noqa: PLC0415

    cfg = tiny_cfg(trained["tmp"], "train.steps=200", "model.dropout=0.0", *HEADS,
                   "heads.kind=shared", "heads.rank=4", "heads.steps=60")
    path = train_heads(cfg, trained["base"], trained["corpus"], trained["tokens"],
                       tmp_path / "shared")
    blob = load_checkpoint(path, kind="vadusa")
    assert blob["meta"]["heads"]["kind"] == "shared"
    assert not any(k.startswith("base") for k in blob["state"]["heads"])  # not the base's
    assert blob["state"]["heads"]["up"].shape == (3, 4, blob["state"]["heads"]["up"].shape[-1])
    assert blob["state"]["heads"]["up"].abs().sum() > 0  # the correction learned
    base = load_checkpoint(trained["base"])["state"]
    assert torch.equal(blob["state"]["model"]["head.weight"], base["head.weight"])  # frozen
    losses = load_checkpoint(path.parent / "last.pt")["state"]["position"]["losses"]
    assert np.mean(losses[-5:]) < np.mean(losses[:3])
    bundle = load_tts(path)
    assert isinstance(bundle.heads, SharedHeads) and bundle.heads.base[0] is bundle.model.head
    assert bundle.heads.rank == 4
    prefix = synthesis_prefix(bundle, "four five six one.", "s0", None, 3.0)
    ar = decode_prefix(bundle, prefix, DecodingConfig())
    va = decode_prefix(bundle, prefix, replace(DecodingConfig(), method="vadusa",
                                               tree="chain:3"))
    assert va.tokens == ar.tokens and ar.tokens and va.forwards < ar.forwards
    joint = train_heads(cfg, trained["base"], trained["corpus"], trained["tokens"],
                        tmp_path / "shared-joint", joint=True)
    moved = load_checkpoint(joint, kind="vadusa")["state"]["model"]["head.weight"]
    assert not torch.equal(moved, base["head.weight"])  # joint: the shared head learns too


def test_precision_auto_keeps_bfloat16_only_if_timing_confirms_it(
        trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU may report bfloat16 instructions and still run the model slower in it: ``auto``
    times both precisions on the loaded model and keeps bfloat16 only when it is at least 5 %
    faster."""
    from vadusa.decoding import timing  # noqa: PLC0415

    bundle = load_tts(trained["frozen"], dtype=torch.bfloat16)
    chosen, ms = timing.faster_precision(bundle, context=20, rounds=1, repeats=2)
    assert chosen in (torch.bfloat16, torch.float32) and set(ms) == {"bfloat16", "float32"}
    assert bundle.model.head.weight.dtype == torch.bfloat16  # timed on a float32 copy
    assert timing.faster_precision(load_tts(trained["frozen"])) == (torch.float32, {})
    for bf16_seconds, expected in ((0.9, torch.bfloat16), (0.98, torch.float32),
                                   (1.4, torch.float32)):
        def fake(b, width, context, repeats, s=bf16_seconds):  # noqa: ANN001, ANN202
            per = s if b.model.head.weight.dtype == torch.bfloat16 else 1.0
            return [per * width] * repeats

        monkeypatch.setattr(timing, "bare_forward_times", fake)
        monkeypatch.setattr(timing, "_CHOSEN", {})
        assert timing.faster_precision(bundle)[0] == expected, bf16_seconds
        # timed once per model shape: a second bundle of the race gets the same answer
        monkeypatch.setattr(timing, "bare_forward_times", None)
        assert timing.faster_precision(bundle)[0] == expected
