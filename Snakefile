# vadusa: the experiment DAG. Rules live in workflow/rules/*.smk, one file per stage; each
# calls the `vadusa` CLI and writes under results/<experiment>/.
#
#   snakemake --cores 2                                  # embedded default, default family
#   snakemake reproduce_all --cores 2                    # every family, method and question
#   snakemake reproduce_hubert --cores 2                 # one family's share of it
#   snakemake --cores 2 --configfile config/tiny.yaml    # CI smoke run
#   snakemake corpus --cores 2                           # just the corpus
#   snakemake ablation --cores 2                         # the AR model per alignment variant
#   snakemake reproduce_zero_shot --cores 2 \
#     --configfile config/libritts.yaml config/libritts-local.yaml  # unseen speakers, prompted
#   snakemake --report results/report.html               # the report of the default target
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# The report's front page: the methods text, filled from the config used, with the main table
# and plots; each figure and table carries its own caption (workflow/report/).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/vocoder.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/heads.smk"
include: "workflow/rules/trees.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/draft.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/open.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/zero_shot.smk"


rule all:
    default_target: True
    input:
        default_targets(),


rule reproduce_all:
    input:
        reproduce_all_targets(),


# The paper's zero-shot protocol on a corpus with unseen test speakers (the LibriTTS-shaped
# corpus of `vadusa make-corpus --layout libritts`, or LibriTTS itself): the corpus and its QA,
# the default family's AR, VADUSA and VADUSA-wt judged on unseen and seen speakers with prompts,
# their races per group, the zero-shot table and the listening page.
rule reproduce_zero_shot:
    input:
        rules.corpus.input,
        rules.table_zero_shot.output,
        expand(rules.listen.output, family=CFG.tokens.default_family),


# One family's share of reproduce_all (reproduce_whisper, reproduce_hubert, ...: one target per
# family of tokens.families): its tokens, models, races, evaluations and open questions.
for _family in FAMILIES:

    rule:
        name:
            f"reproduce_{_family}"
        input:
            family_targets(_family),
