# The paper's protocol (target reproduce_zero_shot): test speakers never heard in training,
# each test utterance spoken from an acoustic prompt (another utterance of its speaker, about
# 3 s; data/prompts.py), the same protocol on held-out utterances of training speakers as the
# seen-speaker reference. A prompted model's evaluations (evaluate_ar, evaluate_vadusa) already
# follow it and report both groups; here the races per group and the table. Run it on a corpus
# with unseen speakers, e.g. the LibriTTS-shaped one (docs/running.md, "Zero-shot").


wildcard_constraints:
    group="|".join(ZERO_SHOT_GROUPS),


rule bench_zero_shot:
    """AR against VADUSA (all heads, decoding.tree, the first eval tau) on the test utterances
    of one speaker group, prompted, in one process."""
    input:
        model=rules.train_heads.output,
    output:
        PLAN.bench_zero_shot(),
    params:
        config_digest=PLAN.digest("bench_zero_shot"),
        tau=PLAN.first_tau(),
    log:
        PLAN.log("bench_{family}_zero_shot_{mode}_{group}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--speakers {wildcards.group} --corpus {CORPUS} "
        "--limit {CFG.measure.bench_utterances} --batch-sizes --tau {params.tau} "
        "--out {output} > {log} 2>&1"


def zero_shot_inputs(family):
    """What the zero-shot table of ``family`` reads: the test evaluations of AR, VADUSA and
    VADUSA-wt at the first eval tau (each with its seen and unseen groups), the races per group,
    and the test split's resynthesis (the quality floor)."""
    return [
        expand(rules.evaluate_ar.output, family=family),
        [PLAN.eval_metrics(family, PLAN.vadusa_system(mode, PLAN.first_tau()))
         for mode in ZERO_SHOT_MODES],
        expand(rules.bench_zero_shot.output, family=family, mode=ZERO_SHOT_MODES,
               group=ZERO_SHOT_GROUPS),
        expand(rules.resynthesize.output, family=family, source="test"),
    ]


rule table_zero_shot:
    """The zero-shot table: WER, SIM, accepted length and speedup of AR, VADUSA and VADUSA-wt
    for unseen and seen speakers (and each test subset), beside the embedded default's main
    table when that run exists."""
    input:
        zero_shot_inputs(CFG.tokens.default_family),
    output:
        markdown=PLAN.table(PLAN.zero_shot_table_name(), "md"),
        csv=reported(PLAN.table(PLAN.zero_shot_table_name(), "csv"), "table_csv",
                     "Zero-shot", CFG.tokens.default_family, "table (CSV)",
                     "unseen and seen speakers"),
        html=reported(PLAN.table(PLAN.zero_shot_table_name(), "html"), "main_table",
                      "Zero-shot", CFG.tokens.default_family, "table",
                      "unseen and seen speakers"),
    log:
        PLAN.log("table_zero_shot"),
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --families {CFG.tokens.default_family} --zero-shot "
        f"--out {PLAN.tables()} > {{log}} 2>&1"
