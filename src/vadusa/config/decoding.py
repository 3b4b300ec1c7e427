"""The sections of decoding and its measurement: sampling and speculative decoding, the
sweep over decoding settings, and the judge that scores intelligibility. Comments give
the reason for a default where it is our choice."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DecodingConfig", "SweepConfig", "JudgeConfig"]


@dataclass(frozen=True)
class DecodingConfig:
    """Sampling of the AR model (shared by AR and speculative decoding)."""

    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    seed: int = 0  # with (utterance, position, draw) it keys every random draw
    max_tokens_per_symbol: float = 6.0  # length limit relative to the text (50 Hz units)
    batch_size: int = 1
    # ar (KV-cached baseline) | vadusa (draft heads; decoding/vadusa.py) | draft (a separate
    # small draft model; decoding/speculative.py)
    method: str = "ar"
    # speculative decoding with draft heads (``--method vadusa``)
    acceptance: str = "tolerance"  # tolerance (the paper's tau rule) | typical (MEDUSA-2)
    tau: int = 1  # tolerance: samples of the base head a draft token may match
    heads: int = 0  # draft heads used, 0 = all the checkpoint has
    # a node count (a greedy tree from the checkpoint's dev acceptance table), fastest (the
    # size with the most expected tokens per second on the machine decoding: run.resolve_tree)
    # or a tree file from ``vadusa calibrate``; our choice for 2 CPU cores, where a wider pass
    # costs more
    tree: str = "16"
    typical_epsilon: float = 0.09  # typical acceptance: hard threshold
    typical_delta: float = 0.3  # typical acceptance: entropy-scaled threshold
    # speculative decoding with a draft model (``--method draft``). gamma, the tokens the draft
    # proposes per target forward; our choice: the default draft has about a sixth of the
    # base's multiply-adds per token (``draft``), so 4 proposals cost about 2/3 of a target
    # forward; ``vadusa bench --draft-tokens`` measures others
    draft_tokens: int = 4
    draft_checkpoint: str = ""  # the draft model: a base.pt from ``vadusa train-draft``
    # weights and activations while decoding (every method alike; sampling is float64 either
    # way). auto: bfloat16 on CPUs with AVX512-BF16 or AMX, where it was measured faster (the
    # 2-core default machine: a KV-cached AR step 1.1x, a 17-node tree pass 1.7x), else
    # float32 (on an H100 bfloat16 decoded slower; devices.py)
    precision: str = "auto"


@dataclass(frozen=True)
class SweepConfig:
    """``vadusa sweep``: an Optuna study over VADUSA's decoding settings that maximises the
    speedup against AR (measured in the same run, on the same utterances) and minimises the
    judge's WER. Values are our choice for 2 CPU cores."""

    trials: int = 30  # completed trials the study runs to, shared by all its workers
    split: str = "dev"  # tune on dev; the test split stays for the reported numbers
    utterances: int = 16  # the split's first utterances, decoded in every trial
    tau_max: int = 4  # tau is tried in 1..tau_max
    heads: tuple[int, ...] = ()  # head counts tried; empty: 1..K, all the checkpoint has
    trees: tuple[int, ...] = (4, 8, 16, 32)  # node counts (greedy trees)
    temperatures: tuple[float, ...] = ()  # empty: decoding.temperature only
    top_ks: tuple[int, ...] = ()  # empty: decoding.top_k only
    sampler: str = "tpe"  # tpe | nsga2 | random (seeded by ``seed``)
    # "" = SQLite in the output directory; journal:PATH = an Optuna journal file (several
    # workers on one file system); or an RDB URL (postgresql://..., mysql://...)
    storage: str = ""
    # the chosen setting: the fastest Pareto trial whose WER is at most AR's + this
    # (absolute: 0.02 = 2 points); if none is, the Pareto trial with the lowest WER
    max_wer_increase: float = 0.02


@dataclass(frozen=True)
class JudgeConfig:
    """The Whisper ASR that scores intelligibility (WER/CER)."""

    model: str = "tiny.en"  # tiny.en | base
    model_dir: str = ""  # a local CTranslate2 Whisper directory; overrides ``model``
    compute_type: str = "int8"
    beam_size: int = 1
    threads: int = 2
    qa_per_voice: int = 50  # utterances per voice scored by ``vadusa corpus-qa``
    # ``vadusa evaluate`` also scores speaker similarity to each utterance's recording
    # (GE2E d-vectors, eval/similarity.py)
    speaker_similarity: bool = True
