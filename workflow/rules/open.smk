# The paper's open questions, per family, on frozen heads: tau in heads.open_taus (with
# heads.count heads) and head counts in heads.open_heads (at the first eval tau), each
# evaluation its own job; speed from one race of every setting against AR.
OPEN_K = max(CFG.heads.count, *CFG.heads.open_heads)
OPEN_GRID = sorted({(t, CFG.heads.count) for t in CFG.heads.open_taus}
                   | {(CFG.heads.eval_taus[0], k) for k in CFG.heads.open_heads})


def open_model(wildcards):
    """Frozen heads with enough heads for every open-question count: the main frozen model
    when heads.count suffices, else one trained with max(open_heads) heads."""
    if OPEN_K == CFG.heads.count:
        return f"{RESULTS}/models/{wildcards.family}/frozen/heads.pt"
    return f"{RESULTS}/models/{wildcards.family}/frozen-k{OPEN_K}/heads.pt"


rule train_heads_open:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/frozen-k{{k}}/heads.pt",
    wildcard_constraints:
        k=r"\d+",
    params:
        config_digest=CFG.section_hash("seed", *HeadsConfig.training_keys()),
    log:
        f"{LOGS}/train_heads_{{family}}_frozen-k{{k}}.log",
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa train-heads --config {RESOLVED} --set heads.count={wildcards.k} "
        "--checkpoint {input.model} --corpus {CORPUS} --tokens {TOKENS}/{wildcards.family} "
        "--out {RESULTS}/models/{wildcards.family}/frozen-k{wildcards.k} > {log} 2>&1"


rule bench_open:
    input:
        open_model,
    output:
        f"{RESULTS}/bench/{{family}}/open.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.open_taus", "heads.open_heads",
                                       "heads.eval_taus", "heads.open_utterances",
                                       exclude=NOT_DRAFT),
        taus=" ".join(str(t) for t in sorted({t for t, _ in OPEN_GRID})),
        heads=" ".join(str(k) for k in sorted({k for _, k in OPEN_GRID})),
    log:
        f"{LOGS}/bench_{{family}}_open.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.heads.open_utterances} --batch-sizes --tau {params.taus} "
        "--heads {params.heads} --out {output} > {log} 2>&1"


def open_setting_options(wildcards):
    if wildcards.setting == "ar":
        return "--method ar"
    tau, k = wildcards.setting.removeprefix("tau").split("-h")
    return f"--method vadusa --tau {tau} --heads {k}"


rule evaluate_open:
    input:
        model=open_model,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/open/{{setting}}/test/metrics.json",
    wildcard_constraints:
        setting=r"ar|tau\d+-h\d+",
    params:
        config_digest=CFG.section_hash("decoding", "judge", "heads.open_utterances",
                                       exclude=NOT_DRAFT),
        options=open_setting_options,
    log:
        f"{LOGS}/evaluate_{{family}}_open_{{setting}}.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.options} --batch-size 1 "
        "--limit {CFG.heads.open_utterances} "
        "--out {RESULTS}/eval/{wildcards.family}/open/{wildcards.setting}/test > {log} 2>&1"


rule open_table:
    input:
        rules.bench_open.output,
        lambda wildcards: expand(rules.evaluate_open.output, family=wildcards.family,
                                 setting=["ar", *(f"tau{t}-h{k}" for t, k in OPEN_GRID)]),
    output:
        markdown=f"{RESULTS}/tables/open_{{family}}.md",
        csv=reported(f"{RESULTS}/tables/open_{{family}}.csv", "table_csv", "Open questions",
                     "{family}", "table (CSV)", "tau and head count"),
        html=reported(f"{RESULTS}/tables/open_{{family}}.html", "open_table", "Open questions",
                      "{family}", "table", "tau and head count"),
        figure=reported(f"{RESULTS}/tables/open_{{family}}.png", "open_figure",
                        "Open questions", "{family}", "figure", "tau and head count"),
    log:
        f"{LOGS}/open_table_{{family}}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --open --families {wildcards.family} "
        "--out {RESULTS}/tables > {log} 2>&1"


rule open_questions:
    """tau 1..4+ and heads {2, 4, 6} for every family: tables/open_<family>.{md,csv,html,png}."""
    input:
        expand(rules.open_table.output, family=FAMILIES),
