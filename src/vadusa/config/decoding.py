"""The sections of decoding and its measurement: sampling and speculative decoding, the
decoding settings the workflow measures, the sweep over decoding settings, and the judge that
scores intelligibility. Comments give the reason for a default where it is our choice."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DecodingConfig", "MeasureConfig", "SweepConfig", "JudgeConfig"]


@dataclass(frozen=True)
class DecodingConfig:
    """Sampling of the AR model (shared by AR and speculative decoding)."""

    # 0 = greedy. AR and VADUSA sample alike; below 1 the model reads more clearly than at
    # its full distribution (docs/selections.md: how and on which split it was chosen)
    temperature: float = 0.7
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
    # way). auto: bfloat16 on CPUs with AVX512-BF16 or AMX, where it was measured faster,
    # else float32 (on an H100 bfloat16 decoded slower; devices.py, docs/speed.md)
    precision: str = "auto"
    # how a voice the duration model does not know is timed (model/loading.py, plan_durations;
    # every voice of a zero-shot model): "prompt", the average voice at the speaking rate of
    # its acoustic prompt; "average", the average voice as it is
    speaking_rate: str = "prompt"


@dataclass(frozen=True)
class MeasureConfig:
    """What the workflow measures with the trained models (``vadusa.plan``: the races, the
    evaluations, the calibrations and the open questions; none of it shapes a model). Values
    are our choice for 2 CPU cores."""

    # VADUSA settings evaluated for WER, all heads, on the decoding.tree tree (tau = 1 emits
    # the AR tokens: its WER is the AR one); the first one is also the tree race's and the
    # listening page's, and the open questions' tau for their head counts
    eval_taus: tuple[int, ...] = (3,)
    # the races against AR (``bench_vadusa``): every tau x heads setting, and typical acceptance
    bench_taus: tuple[int, ...] = (1, 2, 3, 4)
    bench_heads: tuple[int, ...] = (2, 4)
    # trees raced against each other at the first eval tau with all heads (``bench_trees``):
    # node counts (greedy trees from the dev acceptance table), fastest (the size this machine
    # promises most tokens per second with, timed when the decoder is made), chain:D, full:WxD
    bench_trees: tuple[str, ...] = ("4", "8", "16", "32", "fastest", "chain:4")
    # the draft model's tokens per step (gamma) raced against AR (``bench_draft``); its
    # evaluation uses decoding.draft_tokens
    bench_draft_tokens: tuple[int, ...] = (2, 4)
    # test utterances per race setting (0: the whole split): the 12 settings of each
    # bench_vadusa take about 2 minutes on 2 cores
    bench_utterances: int = 20
    # the AR baseline's own bench (``bench_ar``): test utterances at batch 1 and at each of
    # these batch sizes (batched KV-cached AR, the throughput a server would see)
    ar_bench_utterances: int = 40
    ar_batch_sizes: tuple[int, ...] = (8,)
    calibration_utterances: int = 24  # dev utterances decoded by ``vadusa calibrate``
    tree_sizes: tuple[int, ...] = (8, 16, 32)  # trees built from each calibration
    # the workflow also trains Hydra heads (heads.kind hydra; modes "hydra" and "hydra-joint"
    # beside "frozen" and "joint"), races each beside the MEDUSA heads of its mode in one
    # bench run, evaluates and sweeps them: rows of their own in the main table
    hydra: bool = True
    # ... and shared heads (heads.kind shared, mode "shared": MEDUSA's blocks projecting
    # through the base's head with a rank-heads.rank correction, frozen base only), raced
    # beside the frozen MEDUSA heads (tau x heads and trees) and evaluated; not swept
    shared: bool = True
    # the families with Hydra and shared heads: "default" (tokens.default_family) or "all".
    # They are our additions to the paper's method, compared on one family; on every family
    # they would cost reproduce_all about 40 minutes a family on 2 cores (docs/budget.md)
    hydra_shared_families: str = "default"
    # the paper's open questions (target ``open_questions``, every family), on frozen heads:
    # WER and speed at each tau with heads.count heads, and at each head count with the first
    # eval tau. When a count exceeds heads.count, one frozen model with max(open_heads) heads
    # answers them all: frozen heads share no weights (only the global gradient-norm clip
    # couples their training), so its first k heads stand for a k-head model
    open_taus: tuple[int, ...] = (1, 2, 3, 4)
    open_heads: tuple[int, ...] = (2, 4, 6)
    # test utterances per open-question run (0: the whole split): 7 settings, each judged
    open_utterances: int = 20
    listen_utterances: int = 4  # test utterances on the listening page (target ``listen``)


@dataclass(frozen=True)
class SweepConfig:
    """``vadusa sweep``: an Optuna study over VADUSA's decoding settings that maximises the
    speedup against AR (measured in the same run, on the same utterances) and minimises the
    judge's WER. Values are our choice for 2 CPU cores."""

    # completed trials the study runs to, shared by all its workers: a short sweep of 10 (the
    # paper-scale configs run 30 or more)
    trials: int = 10
    split: str = "dev"  # tune on dev; the test split stays for the reported numbers
    # the split's first utterances, decoded in every trial (AR and the trial's setting, each
    # vocoded and judged): 6 take about 35 s a trial on 2 cores
    utterances: int = 6
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

    # the judge of record: the multilingual Whisper base, which no model in the pipeline
    # learns from or draws tokens from (the whisper units come from tiny.en)
    model: str = "base"  # base | tiny.en
    model_dir: str = ""  # a local CTranslate2 Whisper directory; overrides ``model``
    # the fast judge, for the sweep's many trials only; never the only judge of a table row
    fast_model: str = "tiny.en"  # base | tiny.en
    compute_type: str = "int8"
    beam_size: int = 1
    threads: int = 2
    qa_per_voice: int = 15  # utterances per voice scored by ``vadusa corpus-qa``
    # ``vadusa evaluate`` also scores speaker similarity to each utterance's recording
    # (GE2E d-vectors, eval/similarity.py)
    speaker_similarity: bool = True
