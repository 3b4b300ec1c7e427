# Config validation, the resolved config file, paths and input functions shared by all rules.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:
    from vadusa.config import Config, ConfigError, HeadsConfig, dump_config
    from vadusa.data.manifest import SPLITS
except ImportError as exc:
    raise WorkflowError(
        f"cannot import the vadusa package ({exc}); install it first: "
        "`bash scripts/setup.sh` (or `pip install -e .`)"
    )

_sources = " + ".join(str(p) for p in workflow.configfiles) or "the workflow config"
try:
    CFG = Config.from_dict(config, source=_sources)
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration:\n{exc}")
# The same schema, the Snakemake way (it has no defaults: those live in vadusa.config).
validate(config, schema="../schemas/config.schema.json")

RESULTS = str(CFG.experiment_dir)  # results/<experiment>
CORPUS = f"{RESULTS}/corpus"
TOKENS = f"{RESULTS}/tokens"
LOGS = f"{RESULTS}/logs"
# judge keys that only `vadusa evaluate` reads: the corpus and resynthesis digests leave them out
JUDGE_EVAL_ONLY = ("judge.speaker_similarity",)
# decoding keys that only the draft-model decoder reads: AR and VADUSA digests leave them out
NOT_DRAFT = ("decoding.draft_tokens", "decoding.draft_checkpoint")
FAMILIES = list(CFG.tokens.families)
# Threads of the jobs that may run two at a time (heads, vocoder and draft training,
# evaluations), so that independent jobs share the cores without oversubscribing them. It buys
# little throughput: on 2 cores a 1-thread job ran at about half its 2-thread speed (vocoder
# 1.2 s/step against 0.6; vocoding + judging 4.6 s/utterance against 2). The base model and the
# speed races (bench_*, sweep) take two, so on the 2-core default nothing shares the CPU with a
# timed run. Snakemake exports OMP_NUM_THREADS = threads.
try:
    _CORES = workflow.cores
except WorkflowError:
    # no --cores: a cluster run (profiles/slurm), where set-threads gives every submitted
    # rule its threads; workflow.cores raises there instead of returning None
    _CORES = None
_CORES = _CORES if isinstance(_CORES, int) and _CORES > 0 else 2
PAIRED = max(1, _CORES // 2)


wildcard_constraints:
    family="|".join(FAMILIES),


# Every job reads the fully resolved configuration (defaults included) from one file; it is
# rewritten only when it changes. Jobs re-run when the config sections they read change,
# through a digest of those sections in their params (Snakemake's params rerun trigger).
RESOLVED = f"{RESULTS}/config.yaml"
dump_config(CFG, RESOLVED)


def default_targets():
    """The default target: the embedded default end to end for the default family (corpus,
    tokens, vocoder and its resynthesis, base model, heads, trees, races, evaluations, the
    sweep and the main table). The classic draft model and the open questions are
    reproduce_all's: they are comparisons, not the method, and would not fit the default
    target's 90 minutes on 2 cores (about 90 min of job time on the 6 h default)."""
    family = CFG.tokens.default_family
    return [rules.corpus.input, expand(rules.tokenize.output.stats, family=family),
            rules.models.input, rules.vadusa.input]


def reproduce_all_targets():
    """Every family, every method, every open question, and the tables over all families."""
    return [default_targets(), rules.tokens.input, rules.resynthesis.input,
            expand(rules.evaluate_ar.output, family=FAMILIES),
            expand(rules.bench_ar.output, family=FAMILIES),
            vadusa_targets(FAMILIES), rules.table_all.output, rules.open_questions.input,
            rules.wandb_report.output]
