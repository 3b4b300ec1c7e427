"""The plan of an experiment: where each of its artifacts lives, which settings it measures,
and which configuration keys each stage reads.

The workflow (``workflow/rules/*.smk``) writes its outputs where the plan says, expands its
targets from the plan's grids and re-runs a job when the digest of what its stage reads
changes; ``vadusa table``, ``vadusa wandb-report``, the Snakemake report and the command
line's default paths read the same plan. A reader finds the result of a setting by asking the
plan (``plan.eval_metrics("whisper", plan.vadusa_system("frozen", 3))``), never by parsing a
path.

Paths are strings under ``results/<experiment>/`` (``Config.experiment_dir``). Every argument
defaults to a Snakemake wildcard (``family="{family}"``), so ``plan.heads()`` is the pattern
``results/<experiment>/models/{family}/{mode}/heads.pt`` a rule declares and
``plan.heads("whisper", "frozen")`` the file a reader opens; ``in_shell`` turns a pattern into
the form a rule's shell command takes (``{wildcards.family}``).

    plan = Plan(load_config(["config/tiny.yaml"]))
    plan.bench_vadusa("whisper", "frozen")   # results/tiny/bench/whisper/vadusa-frozen.json
    plan.bench_twins("whisper", "frozen")    # ... twins-frozen.json (with Hydra, shared)
    plan.vadusa_evaluations(["whisper"])     # [("whisper", "frozen", 3), ...]
    plan.digest("bench_vadusa")              # the rerun digest of that stage
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from vadusa.config import Config, DraftModelConfig, HeadsConfig

__all__ = ["Plan", "in_shell", "READS", "HEAD_MODES", "HYDRA_TWIN", "SHARED_TWIN",
           "RACED_MODES", "AR", "DRAFT", "OPEN_AR", "NAR_FAMILIES", "ZERO_SHOT_GROUPS",
           "ZERO_SHOT_MODES", "mode_kind"]

# The head modes (models/<family>/<mode>/heads.pt): heads on the frozen base, base and heads
# trained together (VADUSA-wt), both again with Hydra heads (measure.hydra), and shared heads
# on the frozen base (measure.shared)
HEAD_MODES = ("frozen", "joint", "hydra", "hydra-joint", "shared")
# a MEDUSA mode -> its Hydra twin, which races beside the MEDUSA mode (bench_twins)
HYDRA_TWIN = {"frozen": "hydra", "joint": "hydra-joint"}
# ... and its shared-heads twin (heads.kind shared), which races there too
SHARED_TWIN = {"frozen": "shared"}
RACED_MODES = ("frozen", "joint")  # the modes with races of their own (bench_vadusa, trees)
# the systems evaluated besides VADUSA's (eval/<family>/<system>/<split>/)
AR = "ar"
DRAFT = "draft"
OPEN_AR = "ar"  # the open questions' AR setting (eval/<family>/open/ar/)
# the acoustic families, whose tokens keep every codebook: the AR model predicts codebook 1, a
# NAR stage (models/<family>/nar/nar.pt) codebooks 2..N, as VALL-E does with EnCodec
NAR_FAMILIES = ("encodec", "melrvq")
# the zero-shot protocol's speaker groups (reproduce_zero_shot): test speakers never heard in
# training, and held-out utterances of training speakers, both prompted alike
ZERO_SHOT_GROUPS = ("unseen", "seen")
# the split the tree race (bench_trees) decodes: it chooses the tree size, and choices are
# made on dev; the test split stays for the figures the tables report
TREE_RACE_SPLIT = "dev"
# the modes judged in the zero-shot table beside AR: VADUSA and VADUSA-wt
ZERO_SHOT_MODES = ("frozen", "joint")


def mode_kind(mode: str) -> str:
    """The ``heads.kind`` a head mode trains (the open questions' wide modes are MEDUSA's)."""
    if mode.startswith("hydra"):
        return "hydra"
    return "shared" if mode.startswith("shared") else "medusa"


# keys that only `vadusa evaluate` reads: the corpus and resynthesis digests leave them out
_JUDGE_EVAL_ONLY = ("judge.speaker_similarity",)
# keys that only the draft-model decoder reads: AR and VADUSA digests leave them out
_NOT_DRAFT = ("decoding.draft_tokens", "decoding.draft_checkpoint")
# decoding keys a stage's command line sets (its wildcards or its measured grid): its digest
# leaves them out, so changing their default re-runs nothing that never read it
_TAU = ("decoding.tau",)
_TAU_HEADS = ("decoding.tau", "decoding.heads")

#: stage (a rule of the workflow) -> (the config keys it reads: sections or dotted keys,
#: ``{family}`` filled in per job; the keys inside them it does not read). ``Plan.digest``
#: hashes them: a job re-runs when what its stage reads changes, not when anything else does.
READS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "prepare_corpus": (("corpus", "seed"), ()),
    "corpus_qa": (("judge", "seed"), _JUDGE_EVAL_ONLY),
    # the speaker encoder is the Resemblyzer wheel's pretrained one: no key shapes a d-vector
    "speaker_embeddings": ((), ()),
    "train_ssl": (("tokens.{family}.scratch", "seed"), ()),
    "train_codec": (("tokens.encodec.scratch", "seed"), ()),
    "fit_kmeans": (("tokens.{family}", "tokens.kmeans_utterances", "tokens.kmeans_max_frames",
                    "seed"), ()),
    "train_vocoder": (("vocoder", "seed"), ()),
    "resynthesize": (("judge",), _JUDGE_EVAL_ONLY),
    "copy_synthesis": (("judge", "vocoder.hifigan"), _JUDGE_EVAL_ONLY),
    "align": (("align", "text", "seed"), ()),
    "train_durations": (("durations", "seed"), ()),
    "train_base": (("model", "train", "text", "seed"), ()),
    "evaluate_ar": (("decoding", "judge"), _NOT_DRAFT),
    "bench_ar": (("decoding", "measure.ar_bench_utterances", "measure.ar_batch_sizes"),
                 _NOT_DRAFT),
    "train_heads": (("seed", *HeadsConfig.training_keys()), ()),
    "train_heads_open": (("seed", *HeadsConfig.training_keys()), ()),
    "calibrate": (("decoding", "measure.calibration_utterances", "measure.tree_sizes"),
                  _NOT_DRAFT + _TAU),
    "bench_vadusa": (("decoding", "measure.bench_taus", "measure.bench_heads",
                      "measure.bench_utterances"), _NOT_DRAFT + _TAU_HEADS),
    "bench_twins": (("decoding", "measure.bench_taus", "measure.bench_heads",
                     "measure.bench_utterances"), _NOT_DRAFT + _TAU_HEADS),
    "bench_trees": (("decoding", "measure.bench_trees", "measure.eval_taus",
                     "measure.bench_utterances"), _NOT_DRAFT + _TAU_HEADS + ("decoding.tree",)),
    "evaluate_vadusa": (("decoding", "judge"), _NOT_DRAFT + _TAU + ("decoding.method",)),
    "bench_zero_shot": (("decoding", "measure.eval_taus", "measure.bench_utterances"),
                        _NOT_DRAFT + _TAU_HEADS),
    "sweep": (("decoding", "sweep", "judge"), _JUDGE_EVAL_ONLY + _NOT_DRAFT),
    "bench_open": (("decoding", "heads.count", "measure.open_taus", "measure.open_heads",
                    "measure.eval_taus", "measure.open_utterances"), _NOT_DRAFT + _TAU_HEADS),
    "evaluate_open": (("decoding", "judge", "measure.open_utterances"),
                      _NOT_DRAFT + _TAU_HEADS + ("decoding.method",)),
    # (melrvq with nar.mel_stage trains the unit-to-mel recipe: the vocoder section)
    "train_nar": (("nar", "vocoder", "text.frontend", "seed"), ()),
    "train_draft": (("model", "train", "text", "seed", *DraftModelConfig.training_keys()), ()),
    "bench_draft": (("decoding", "measure.bench_draft_tokens", "measure.bench_utterances"),
                    _NOT_DRAFT),
    "evaluate_draft": (("decoding", "judge"), ("decoding.draft_checkpoint",)),
    "ablation_train": (("model", "train", "text", "seed", "ablation.variants"), ()),
    "ablation_evaluate": (("decoding", "judge", "ablation.split"), _NOT_DRAFT),
    "listen": (("measure.listen_utterances",), ()),
}


def in_shell(pattern: str) -> str:
    """A path pattern as a rule's shell command names it: ``{family}`` -> ``{wildcards.family}``
    (Snakemake fills a shell command's wildcards from ``wildcards``)."""
    return re.sub(r"\{(\w+)\}", r"{wildcards.\1}", pattern)


class Plan:
    """The artifacts, measured settings and per-stage reads of one experiment (``cfg``)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = str(cfg.experiment_dir)  # results/<experiment>

    def _at(self, *parts: Any) -> str:
        return "/".join([self.root, *(str(p) for p in parts if p != "")])

    # --- what each stage reads ------------------------------------------------------------

    def reads(self, stage: str, family: str = "{family}") -> tuple[tuple[str, ...],
                                                                    tuple[str, ...]]:
        """The config keys ``stage`` reads and the keys inside them it does not (``READS``)."""
        keys, exclude = READS[stage]
        return tuple(k.format(family=family) for k in keys), exclude

    def digest(self, stage: str, family: str = "{family}") -> str:
        """The rerun digest of a stage's jobs: a short hash of the config keys it reads."""
        keys, exclude = self.reads(stage, family)
        return self.cfg.section_hash(*keys, exclude=exclude)

    # --- the experiment's files -----------------------------------------------------------

    def config_file(self) -> str:
        """The fully resolved configuration every job reads."""
        return self._at("config.yaml")

    def log(self, name: str = "{name}") -> str:
        return self._at("logs", f"{name}.log")

    def wandb_runs(self) -> str:
        """Where the W&B backend keeps its runs (tracking.backend wandb)."""
        return self._at("wandb")

    def corpus(self, name: str = "") -> str:
        """The corpus directory (``vadusa prepare``), or a file in it."""
        return self._at("corpus", name)

    def manifest(self, split: str = "{split}") -> str:
        return self.corpus(f"manifests/{split}.jsonl.gz")

    def dvectors(self, split: str = "{split}") -> str:
        """A split's per-utterance GE2E d-vectors (``vadusa embed-speakers``; the unit vocoder
        reads them with vocoder.speaker_conditioning dvector)."""
        return self.corpus(f"dvectors/{split}.npz")

    def tokens(self, family: str = "{family}", name: str = "") -> str:
        """A family's token directory (token files, k-means, SSL model, codec), or a file."""
        return self._at("tokens", family, name)

    def token_file(self, family: str = "{family}", split: str = "{split}",
                   ext: str = "{ext}") -> str:
        return self.tokens(family, f"{split}.{ext}")

    def ssl_dir(self, family: str = "{family}") -> str:
        """A from-scratch HuBERT or wav2vec2 model's directory (``vadusa train-ssl``)."""
        return self.tokens(family, "ssl")

    def ssl_model(self, family: str = "{family}") -> str:
        return f"{self.ssl_dir(family)}/model.pt"

    def codec_dir(self) -> str:
        """The encodec family's from-scratch codec (``vadusa train-codec``)."""
        return self.tokens("encodec", "codec")

    def codec(self) -> str:
        return f"{self.codec_dir()}/codec.pt"

    def kmeans(self, family: str = "{family}") -> str:
        return self.tokens(family, "kmeans.npz")

    def vocoder_dir(self, family: str = "{family}") -> str:
        return self._at("vocoder", family)

    def vocoder(self, family: str = "{family}") -> str:
        """A family's unit vocoder (the encodec family's is its codec, ``codec``)."""
        return f"{self.vocoder_dir(family)}/unit2mel.pt"

    def resynthesis(self, family: str = "{family}", source: str = "{source}") -> str:
        """A family's resynthesis of a split or of the LibriVox recordings (a directory)."""
        return self._at("resynth", family, source)

    def copy_synthesis(self, source: str = "{source}") -> str:
        """HiFi-GAN's copy synthesis of a split or of the LibriVox recordings."""
        return self._at("resynth", "copy", source)

    def durations(self, family: str = "{family}", name: str = "") -> str:
        """The aligner's output of a family (``vadusa align``), or a file in it."""
        return self._at("durations", family, name)

    def model_dir(self, family: str = "{family}", model: str = "{model}") -> str:
        """A trained model's directory: base, draft, durations or a head mode."""
        return self._at("models", family, model)

    def duration_model(self, family: str = "{family}") -> str:
        return f"{self.model_dir(family, 'durations')}/durations.pt"

    def nar(self, family: str = "{family}") -> str:
        """An acoustic family's NAR stage (``vadusa train-nar``: codebooks 2..N)."""
        return f"{self.model_dir(family, 'nar')}/nar.pt"

    def base(self, family: str = "{family}") -> str:
        return f"{self.model_dir(family, 'base')}/base.pt"

    def draft(self, family: str = "{family}") -> str:
        """The classic draft model (``vadusa train-draft``)."""
        return f"{self.model_dir(family, 'draft')}/base.pt"

    def heads_dir(self, family: str = "{family}", mode: str = "{mode}") -> str:
        """A head mode's directory (``vadusa train-heads``/``train-joint``: heads.pt, last.pt)."""
        return self.model_dir(family, mode)

    def heads(self, family: str = "{family}", mode: str = "{mode}") -> str:
        return f"{self.heads_dir(family, mode)}/heads.pt"

    def trees(self, family: str = "{family}", mode: str = "{mode}", tau: Any = "{tau}") -> str:
        """A calibration's directory (``vadusa calibrate``: acceptance.json and the trees)."""
        return self._at("trees", family, mode, f"tau{tau}")

    def acceptance(self, family: str = "{family}", mode: str = "{mode}",
                   tau: Any = "{tau}") -> str:
        return f"{self.trees(family, mode, tau)}/acceptance.json"

    def bench_dir(self, family: str = "{family}") -> str:
        return self._at("bench", family)

    def bench(self, family: str = "{family}", name: str = "{name}") -> str:
        """A speed race's results (``vadusa bench --out``)."""
        return f"{self.bench_dir(family)}/{name}.json"

    def bench_ar(self, family: str = "{family}") -> str:
        return self.bench(family, "ar")

    def bench_vadusa(self, family: str = "{family}", mode: str = "{mode}") -> str:
        """Every tau x heads setting of a raced mode against AR."""
        return self.bench(family, f"vadusa-{mode}")

    def bench_twins(self, family: str = "{family}", mode: str = "{mode}") -> str:
        """Every tau x heads setting of a raced mode and of its twins (``twins_of``: its
        Hydra twin, the shared heads) against AR, in one race (reproduce_all)."""
        return self.bench(family, f"twins-{mode}")

    def bench_trees(self, family: str = "{family}", mode: str = "{mode}") -> str:
        return self.bench(family, f"trees-{mode}")

    def bench_open(self, family: str = "{family}") -> str:
        return self.bench(family, "open")

    def bench_draft(self, family: str = "{family}") -> str:
        return self.bench(family, "draft")

    def bench_zero_shot(self, family: str = "{family}", mode: str = "{mode}",
                        group: str = "{group}") -> str:
        """A mode's race against AR on the test utterances of one speaker group
        (``ZERO_SHOT_GROUPS``), prompted by the zero-shot protocol."""
        return self.bench(family, f"zero-shot-{mode}-{group}")

    def race(self, family: str, mode: str, trees: bool = False) -> tuple[str, str]:
        """Where a head mode's race is (with ``trees``, its tree race): the bench file, and
        the ``heads_from`` its settings carry there ("" for the race's own heads; a Hydra or
        shared mode races beside its MEDUSA twin: in the twin's twins race, or tree race)."""
        for twins in (HYDRA_TWIN, SHARED_TWIN):
            for medusa, twin in twins.items():
                if mode == twin:
                    return (self.bench_trees if trees else self.bench_twins)(family, medusa), twin
        return (self.bench_trees if trees else self.bench_vadusa)(family, mode), ""

    def eval_dir(self, family: str = "{family}") -> str:
        return self._at("eval", family)

    def evaluation(self, family: str = "{family}", system: str = "{system}",
                   split: str = "test") -> str:
        """A system's evaluation (``vadusa evaluate --out``: wavs, tokens.jsonl,
        metrics.json); ``system`` from ``AR``, ``DRAFT``, ``vadusa_system``, ``open_system``."""
        return f"{self.eval_dir(family)}/{system}/{split}"

    def eval_metrics(self, family: str = "{family}", system: str = "{system}",
                     split: str = "test") -> str:
        return self.metrics(self.evaluation(family, system, split))

    @staticmethod
    def metrics(directory: str) -> str:
        """The metrics.json of an evaluation or resynthesis directory."""
        return f"{directory}/metrics.json"

    @staticmethod
    def vadusa_system(mode: str = "{mode}", tau: Any = "{tau}") -> str:
        """VADUSA decoding with a head mode's heads at a tolerance, all heads."""
        return f"vadusa-{mode}-tau{tau}"

    @staticmethod
    def open_system(setting: str = "{setting}") -> str:
        """An open-question setting (``open_settings``, or ``OPEN_AR``)."""
        return f"open/{setting}"

    def sweep(self, family: str = "{family}", mode: str = "{mode}", name: str = "") -> str:
        """A sweep's directory (study.db, trials.csv, chosen.yaml, plots), or a file in it."""
        return self._at("sweep", family, mode, name)

    def tables(self) -> str:
        return self._at("tables")

    def table(self, name: str = "main", ext: str = "{ext}") -> str:
        """A table ``vadusa table`` writes (``name``.md, .csv, .html; the open questions' also
        .png): ``main``, ``all``, ``open_table_name``, ``ablation_table_name``."""
        return f"{self.tables()}/{name}.{ext}"

    @staticmethod
    def zero_shot_table_name() -> str:
        return "zero_shot"

    @staticmethod
    def open_table_name(family: str = "{family}") -> str:
        return f"open_{family}"

    @staticmethod
    def ablation_table_name(family: str = "{family}") -> str:
        return f"ablation_{family}"

    def listen(self, family: str = "{family}", name: str = "") -> str:
        """A family's listening page (index.html, alignment.png), or its directory."""
        return self._at("listen", family, name)

    def wandb_report(self, name: str = "") -> str:
        """``vadusa wandb-report``'s local page (index.html, data.json, PNGs), or a file."""
        return self._at("wandb_report", name)

    def ablation(self, family: str = "{family}", variant: str = "{variant}",
                 name: str = "") -> str:
        """An ablation variant's directory (base.pt; its evaluation in ``dev``, the
        ``ablation.split``), or a file."""
        return self._at("ablation", family, variant, name)

    def ablation_model(self, family: str = "{family}", variant: str = "{variant}") -> str:
        return self.ablation(family, variant, "base.pt")

    def ablation_evaluation(self, family: str = "{family}", variant: str = "{variant}",
                            split: str | None = None) -> str:
        """A variant's evaluation, on ``ablation.split`` unless ``split`` says otherwise."""
        return self.ablation(family, variant, split or self.cfg.ablation.split)

    def front_page_files(self) -> dict[str, str]:
        """The files the Snakemake report's front page names, and shows when the report holds
        them: the resolved config, the main tables, the default family's sweep front and open
        questions' figure."""
        family = self.cfg.tokens.default_family
        return {"config": self.config_file(),
                "main": self.table("main", "html"), "all": self.table("all", "html"),
                "pareto": self.sweep(family, "frozen", "pareto.png"),
                "open": self.table(self.open_table_name(family), "png")}

    # --- what is measured -----------------------------------------------------------------

    def has_other_heads(self, family: str | None = None) -> bool:
        """Whether ``family`` (None: the default family) has Hydra and shared heads besides
        MEDUSA's (measure.hydra_shared_families)."""
        return (self.cfg.measure.hydra_shared_families == "all" or family is None
                or family == self.cfg.tokens.default_family)

    def hydra_of(self, family: str | None = None) -> dict[str, str]:
        """MEDUSA mode -> the Hydra mode that races beside it (none without measure.hydra, or
        for a family without other heads)."""
        return dict(HYDRA_TWIN) if self.cfg.measure.hydra and self.has_other_heads(
            family) else {}

    def twins_of(self, family: str | None = None) -> dict[str, list[str]]:
        """MEDUSA mode -> the modes of other heads kinds that race beside it, in its tau x
        heads race and its tree race: Hydra (measure.hydra), shared (measure.shared)."""
        twins: dict[str, list[str]] = {m: [] for m in RACED_MODES}
        for medusa, hydra in self.hydra_of(family).items():
            twins[medusa].append(hydra)
        if self.cfg.measure.shared and self.has_other_heads(family):
            for medusa, shared in SHARED_TWIN.items():
                twins[medusa].append(shared)
        return {m: t for m, t in twins.items() if t}

    def head_modes(self, family: str | None = None) -> list[str]:
        """The head modes the workflow trains, evaluates and reports for ``family`` (None:
        the default family)."""
        shared = self.cfg.measure.shared and self.has_other_heads(family)
        return ["frozen", "joint", *self.hydra_of(family).values(),
                *(SHARED_TWIN.values() if shared else ())]

    @staticmethod
    def raced_modes() -> list[str]:
        """The modes with races of their own: tau x heads, trees (beside their twins)."""
        return list(RACED_MODES)

    def swept_modes(self, family: str | None = None) -> list[str]:
        """The modes whose decoding settings are swept: the frozen heads (and Hydra's)."""
        return ["frozen", *(["hydra"] if self.hydra_of(family) else [])]

    def first_tau(self) -> int:
        """The first eval tau: the tree race's, the listening page's, the open questions'
        tau for their head counts."""
        return self.cfg.measure.eval_taus[0]

    def vadusa_evaluations(self, families: Iterable[str]) -> list[tuple[str, str, int]]:
        """(family, mode, tau) of every VADUSA evaluation: each head mode at each eval tau."""
        return [(family, mode, tau) for family in families
                for mode in self.head_modes(family) for tau in self.cfg.measure.eval_taus]

    def calibrations(self, families: Iterable[str]) -> list[tuple[str, str, int]]:
        """(family, mode, tau) of every calibration: the frozen heads at each eval tau."""
        return [(family, "frozen", tau) for family in families
                for tau in self.cfg.measure.eval_taus]

    def open_questions(self) -> list[tuple[str, int, int]]:
        """(question, tau, heads) in the open questions' table order: each open tau with
        heads.count heads (question "tau"), then each open head count at the first eval tau
        (question "heads")."""
        m, count = self.cfg.measure, self.cfg.heads.count
        return ([("tau", tau, count) for tau in m.open_taus]
                + [("heads", self.first_tau(), k) for k in m.open_heads])

    def open_settings(self) -> dict[str, tuple[int, int]]:
        """The open questions' VADUSA settings, each evaluated once: name -> (tau, heads),
        sorted (AR, ``OPEN_AR``, is evaluated beside them)."""
        grid = sorted({(tau, k) for _, tau, k in self.open_questions()})
        return {self.open_setting(tau, k): (tau, k) for tau, k in grid}

    @staticmethod
    def open_setting(tau: Any, heads: Any) -> str:
        return f"tau{tau}-h{heads}"

    @staticmethod
    def open_setting_values(name: str) -> tuple[int, int]:
        """(tau, heads) of an open-question setting named by ``open_setting``."""
        found = re.fullmatch(r"tau(\d+)-h(\d+)", name)
        if found is None:
            raise ValueError(f"{name!r} names no open-question setting (tau<T>-h<K>)")
        return int(found.group(1)), int(found.group(2))

    def open_heads_needed(self) -> int:
        """Heads of the frozen model that answers the open questions."""
        return max(self.cfg.heads.count, *self.cfg.measure.open_heads)

    @staticmethod
    def wide_mode(k: Any = "{k}") -> str:
        """The mode of frozen heads trained with k heads for the open questions."""
        return f"frozen-k{k}"

    def open_model(self, family: str = "{family}") -> str:
        """The frozen heads the open questions decode with: the main frozen model when
        heads.count suffices, else one trained with max(open_heads) heads."""
        k = self.open_heads_needed()
        return self.heads(family, "frozen" if k == self.cfg.heads.count else self.wide_mode(k))

    def family_results(self, family: str) -> list[str]:
        """Every result file of a family the tables and the W&B page read (present or not)."""
        systems = [AR, DRAFT, *(self.vadusa_system(m, t)
                                for _, m, t in self.vadusa_evaluations([family]))]
        systems += [self.open_system(s) for s in (OPEN_AR, *self.open_settings())]
        return [self.bench_ar(family),
                *(self.bench_vadusa(family, m) for m in self.raced_modes()),
                *(self.bench_twins(family, m) for m in self.twins_of(family)),
                *(self.bench_trees(family, m) for m in self.raced_modes()),
                self.bench_open(family), self.bench_draft(family),
                *(self.eval_metrics(family, s) for s in systems),
                self.metrics(self.resynthesis(family, "test"))]

    def family_dirs(self, family: str) -> Sequence[str]:
        """The directories that hold a family's measurements (races, evaluations, sweeps)."""
        return [self.bench_dir(family), self.eval_dir(family), self._at("sweep", family)]
