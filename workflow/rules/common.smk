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


wildcard_constraints:
    family="|".join(FAMILIES),


# Every job reads the fully resolved configuration (defaults included) from one file; it is
# rewritten only when it changes. Jobs re-run when the config sections they read change,
# through a digest of those sections in their params (Snakemake's params rerun trigger).
RESOLVED = f"{RESULTS}/config.yaml"
dump_config(CFG, RESOLVED)


def default_targets():
    return [rules.corpus.input, rules.tokens.input, rules.resynthesis.input, rules.models.input,
            rules.vadusa.input]
