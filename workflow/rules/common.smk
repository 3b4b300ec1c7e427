# Config validation, the resolved config file, the experiment's plan (vadusa.plan: every path,
# measured grid and per-stage rerun digest the rules use) and what all rules share.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:
    from vadusa.config import Config, ConfigError, dump_config
    from vadusa.data.manifest import SPLITS
    from vadusa.plan import (AR, DRAFT, HEAD_MODES, NAR_FAMILIES, OPEN_AR, TREE_RACE_SPLIT,
                             ZERO_SHOT_GROUPS, ZERO_SHOT_MODES, Plan, in_shell, mode_kind)
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

# Where every output goes (patterns with wildcards: PLAN.heads() is
# results/<experiment>/models/{family}/{mode}/heads.pt; in_shell(...) names one in a shell
# command), what is measured (PLAN.vadusa_evaluations, PLAN.open_settings...) and the config
# keys each stage reads (PLAN.digest(<rule>)): the readers (`vadusa table`, the W&B page, the
# report) ask the same plan.
PLAN = Plan(CFG)
CORPUS = PLAN.corpus()  # every stage reads it: a shorthand for the shell commands
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
RESOLVED = PLAN.config_file()
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
