# The alignment ablation (target `ablation`, not part of the default target): the AR model of
# the default family trained again with each variant of ablation.variants (overrides of
# model.* and train.* keys: the same corpus, tokens, durations and steps), judged on
# ablation.split (dev by default: the ablation chooses defaults, the test split stays for the
# tables) like the configured model, and one table beside it and the resynthesis floor of that
# split: tables/ablation_<family>.{md,csv,html}. docs/alignment.md reads it.
import re

from vadusa.config import ConfigError, load_config

ABLATION = {}
ABLATION_SPLIT = CFG.ablation.split
for _name, _overrides in CFG.ablation.variants.items():
    try:
        ABLATION[_name] = load_config([RESOLVED], list(_overrides))
    except ConfigError as exc:
        raise WorkflowError(f"ablation.variants.{_name}: {exc}")


wildcard_constraints:
    variant="|".join(map(re.escape, ABLATION)) or "-",


def variant_inputs(wildcards):
    """A variant's durations and duration model, when it aligns by durations."""
    if ABLATION[wildcards.variant].model.alignment != "duration":
        return {}
    family = wildcards.family
    return {"durations": expand(rules.align.output.durations, family=family),
            "duration_model": expand(rules.train_durations.output, family=family)}


def variant_overrides(wildcards):
    return " ".join(f"--set '{o}'" for o in CFG.ablation.variants[wildcards.variant])


rule ablation_train:
    input:
        unpack(variant_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.ablation_model(),
    params:
        overrides=variant_overrides,
        config_digest=PLAN.digest("ablation_train"),
    log:
        PLAN.log("ablation_train_{family}_{variant}"),
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "vadusa train-base --config {RESOLVED} {params.overrides} --family {wildcards.family} "
        f"--corpus {{CORPUS}} --tokens {in_shell(PLAN.tokens())} "
        f"--out {in_shell(PLAN.ablation())} > {{log}} 2>&1"


rule ablation_evaluate:
    input:
        unpack(vocoding),
        model=rules.ablation_train.output,
    output:
        PLAN.metrics(PLAN.ablation_evaluation()),
    params:
        nar=nar_argument,
        config_digest=PLAN.digest("ablation_evaluate"),
    log:
        PLAN.log("ablation_evaluate_{family}_{variant}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        f"--checkpoint {{input.model}} --split {ABLATION_SPLIT} --corpus {{CORPUS}} "
        "--vocoder {input.vocoder} {params.nar} "
        f"--method ar --out {in_shell(PLAN.ablation_evaluation())} "
        "> {log} 2>&1"


if ABLATION_SPLIT != "test":  # on test, evaluate_ar's evaluation is the reference

    rule ablation_reference:
        """The configured AR model judged on the ablation's split, beside its variants."""
        input:
            unpack(vocoding),
            model=rules.train_base.output,
        output:
            PLAN.eval_metrics(system=AR, split=ABLATION_SPLIT),
        params:
            nar=nar_argument,
            config_digest=PLAN.digest("ablation_evaluate"),
        log:
            PLAN.log(f"evaluate_{{family}}_ar_{ABLATION_SPLIT}"),
        threads: PAIRED
        resources:
            mem_mb=8000,
            runtime=120,
        shell:
            "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
            f"--checkpoint {{input.model}} --split {ABLATION_SPLIT} --corpus {{CORPUS}} "
            "--vocoder {input.vocoder} {params.nar} --method ar "
            f"--out {in_shell(PLAN.evaluation(system=AR, split=ABLATION_SPLIT))} > {{log}} 2>&1"


rule ablation_table:
    input:
        expand(rules.ablation_evaluate.output, variant=list(ABLATION), allow_missing=True),
        PLAN.eval_metrics(system=AR, split=ABLATION_SPLIT),
        expand(rules.resynthesize.output, source=ABLATION_SPLIT, allow_missing=True),
    output:
        markdown=PLAN.table(PLAN.ablation_table_name(), "md"),
        csv=PLAN.table(PLAN.ablation_table_name(), "csv"),
        html=reported(PLAN.table(PLAN.ablation_table_name(), "html"), "ablation_table",
                      "Alignment", "{family}", "table", "AR WER per alignment variant"),
    log:
        PLAN.log("ablation_table_{family}"),
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --ablation --families {wildcards.family} "
        f"--out {PLAN.tables()} > {{log}} 2>&1"


rule ablation:
    input:
        expand(rules.ablation_table.output, family=CFG.tokens.default_family),
