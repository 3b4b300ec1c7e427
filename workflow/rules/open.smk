# The paper's open questions, per family, on frozen heads: tau in measure.open_taus (with
# heads.count heads) and head counts in measure.open_heads (at the first eval tau), each
# evaluation its own job; speed from one race of every setting against AR.
OPEN_SETTINGS = PLAN.open_settings()  # name -> (tau, heads)


def open_model(wildcards):
    """Frozen heads with enough heads for every open-question count: the main frozen model
    when heads.count suffices, else one trained with max(open_heads) heads."""
    return PLAN.open_model(wildcards.family)


rule train_heads_open:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.heads(mode=PLAN.wide_mode()),
    wildcard_constraints:
        k=r"\d+",
    params:
        config_digest=PLAN.digest("train_heads_open"),
    log:
        PLAN.log("train_heads_{family}_frozen-k{k}"),
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa train-heads --config {RESOLVED} --set heads.count={wildcards.k} "
        f"--checkpoint {{input.model}} --corpus {{CORPUS}} --tokens {in_shell(PLAN.tokens())} "
        f"--out {in_shell(PLAN.heads_dir(mode=PLAN.wide_mode()))} > {{log}} 2>&1"


rule bench_open:
    input:
        open_model,
    output:
        PLAN.bench_open(),
    params:
        config_digest=PLAN.digest("bench_open"),
        taus=" ".join(str(t) for t in sorted({t for t, _ in OPEN_SETTINGS.values()})),
        heads=" ".join(str(k) for k in sorted({k for _, k in OPEN_SETTINGS.values()})),
    log:
        PLAN.log("bench_{family}_open"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.measure.open_utterances} --batch-sizes --tau {params.taus} "
        "--heads {params.heads} --out {output} > {log} 2>&1"


def open_setting_options(wildcards):
    if wildcards.setting == OPEN_AR:
        return "--method ar"
    tau, k = PLAN.open_setting_values(wildcards.setting)
    return f"--method vadusa --tau {tau} --heads {k}"


rule evaluate_open:
    input:
        unpack(vocoding),
        model=open_model,
    output:
        PLAN.eval_metrics(system=PLAN.open_system()),
    wildcard_constraints:
        setting=r"ar|tau\d+-h\d+",
    params:
        nar=nar_argument,
        config_digest=PLAN.digest("evaluate_open"),
        options=open_setting_options,
    log:
        PLAN.log("evaluate_{family}_open_{setting}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.nar} {params.options} "
        "--batch-size 1 "
        "--limit {CFG.measure.open_utterances} "
        f"--out {in_shell(PLAN.evaluation(system=PLAN.open_system()))} > {{log}} 2>&1"


rule open_table:
    input:
        rules.bench_open.output,
        lambda wildcards: expand(rules.evaluate_open.output, family=wildcards.family,
                                 setting=[OPEN_AR, *OPEN_SETTINGS]),
    output:
        markdown=PLAN.table(PLAN.open_table_name(), "md"),
        csv=reported(PLAN.table(PLAN.open_table_name(), "csv"), "table_csv", "Open questions",
                     "{family}", "table (CSV)", "tau and head count"),
        html=reported(PLAN.table(PLAN.open_table_name(), "html"), "open_table",
                      "Open questions", "{family}", "table", "tau and head count"),
        figure=reported(PLAN.table(PLAN.open_table_name(), "png"), "open_figure",
                        "Open questions", "{family}", "figure", "tau and head count"),
    log:
        PLAN.log("open_table_{family}"),
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --open --families {wildcards.family} "
        f"--out {PLAN.tables()} > {{log}} 2>&1"


rule open_questions:
    """tau 1..4+ and heads {2, 4, 6} for every family: tables/open_<family>.{md,csv,html,png}."""
    input:
        expand(rules.open_table.output, family=FAMILIES),
