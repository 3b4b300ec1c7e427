# Another speculative scheme for comparison: a classic draft model (a small AR transformer
# trained like the base, decoding/speculative.py) with lossless speculative sampling.
# Its training, speed race and evaluation, as for the base model (model.smk).


rule train_draft:
    input:
        unpack(alignment_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.draft(),
    params:
        config_digest=PLAN.digest("train_draft"),
    log:
        PLAN.log("train_draft_{family}"),
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=360,
    shell:
        "vadusa train-draft --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--tokens {in_shell(PLAN.tokens())} --out {in_shell(PLAN.model_dir(model='draft'))} "
        "> {log} 2>&1"


rule bench_draft:
    input:
        model=rules.train_base.output,
        draft=rules.train_draft.output,
    output:
        PLAN.bench_draft(),
    params:
        config_digest=PLAN.digest("bench_draft"),
        gammas=" ".join(str(g) for g in CFG.measure.bench_draft_tokens),
    log:
        PLAN.log("bench_{family}_draft"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit {CFG.measure.bench_utterances} --batch-sizes "
        "--draft {input.draft} --draft-tokens {params.gammas} --out {output} > {log} 2>&1"


rule evaluate_draft:
    input:
        unpack(vocoding),
        model=rules.train_base.output,
        draft=rules.train_draft.output,
    output:
        PLAN.eval_metrics(system=DRAFT),
    params:
        nar=nar_argument,
        config_digest=PLAN.digest("evaluate_draft"),
    log:
        PLAN.log("evaluate_{family}_draft_test"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.nar} --method draft "
        "--draft {input.draft} "
        f"--batch-size 1 --out {in_shell(PLAN.evaluation(system=DRAFT))} > {{log}} 2>&1"
