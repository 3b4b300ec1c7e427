# The base AR TTS model per family, its evaluation on the test split (AR decoding -> unit
# vocoder -> Whisper WER) and the AR decoding benchmark (batch 1 and batched, one process).


rule train_base:
    input:
        unpack(alignment_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/base/base.pt",
    params:
        config_digest=CFG.section_hash("model", "train", "text", "seed"),
    log:
        f"{LOGS}/train_base_{{family}}.log",
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "vadusa train-base --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--tokens {TOKENS}/{wildcards.family} --out {RESULTS}/models/{wildcards.family}/base "
        "> {log} 2>&1"


rule evaluate_ar:
    input:
        model=rules.train_base.output,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/ar/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge", exclude=NOT_DRAFT),
    log:
        f"{LOGS}/evaluate_{{family}}_ar_test.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method ar "
        "--out {RESULTS}/eval/{wildcards.family}/ar/test > {log} 2>&1"


rule bench_ar:
    input:
        model=rules.train_base.output,
    output:
        f"{RESULTS}/bench/{{family}}/ar.json",
    params:
        config_digest=CFG.section_hash("decoding", exclude=NOT_DRAFT),
    log:
        f"{LOGS}/bench_{{family}}_ar.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit 40 --batch-sizes 8 --out {output} > {log} 2>&1"


rule models:
    input:
        expand(rules.evaluate_ar.output, family=CFG.tokens.default_family),
        expand(rules.bench_ar.output, family=CFG.tokens.default_family),
