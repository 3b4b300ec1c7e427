# The base AR TTS model per family, its evaluation on the test split (AR decoding -> unit
# vocoder -> Whisper WER) and the AR decoding benchmark (batch 1 and batched, one process).


rule train_base:
    input:
        unpack(alignment_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.base(),
    params:
        config_digest=PLAN.digest("train_base"),
    log:
        PLAN.log("train_base_{family}"),
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "vadusa train-base --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--tokens {in_shell(PLAN.tokens())} --out {in_shell(PLAN.model_dir(model='base'))} "
        "> {log} 2>&1"


rule train_nar:
    """An acoustic family's NAR stage: codebooks 2..N from codebook 1, the text and the
    speaker (VALL-E's second stage; VADUSA accelerates the AR one)."""
    input:
        meta=rules.tokenize.output.meta,
        manifests=rules.prepare_corpus.output.manifests,
        dvectors=speaker_dvectors,  # melrvq's mel stage is the unit vocoder's recipe
    output:
        PLAN.nar(),
    wildcard_constraints:
        family="|".join(NAR_FAMILIES),
    params:
        config_digest=PLAN.digest("train_nar"),
    log:
        PLAN.log("train_nar_{family}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa train-nar --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--tokens {in_shell(PLAN.tokens())} --out {in_shell(PLAN.model_dir(model='nar'))} "
        "> {log} 2>&1"


rule evaluate_ar:
    input:
        unpack(vocoding),
        model=rules.train_base.output,
    output:
        PLAN.eval_metrics(system=AR),
    params:
        nar=nar_argument,
        config_digest=PLAN.digest("evaluate_ar"),
    log:
        PLAN.log("evaluate_{family}_ar_test"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.nar} --method ar "
        f"--out {in_shell(PLAN.evaluation(system=AR))} > {{log}} 2>&1"


rule bench_ar:
    input:
        model=rules.train_base.output,
    output:
        PLAN.bench_ar(),
    params:
        config_digest=PLAN.digest("bench_ar"),
    log:
        PLAN.log("bench_{family}_ar"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit {CFG.measure.ar_bench_utterances} "
        f"--batch-sizes {' '.join(map(str, CFG.measure.ar_batch_sizes))} "
        "--out {output} > {log} 2>&1"


rule models:
    input:
        expand(rules.evaluate_ar.output, family=CFG.tokens.default_family),
        expand(rules.bench_ar.output, family=CFG.tokens.default_family),
