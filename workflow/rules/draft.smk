# Another speculative scheme for comparison: a classic draft model (a small AR transformer
# trained like the base, decoding/speculative.py) with lossless speculative sampling.
# Its training, speed race and evaluation, as for the base model (model.smk).


rule train_draft:
    input:
        unpack(alignment_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/draft/base.pt",
    params:
        config_digest=CFG.section_hash("model", "train", "text", "seed", "draft.dim",
                                       "draft.layers", "draft.heads", "draft.steps"),
    log:
        f"{LOGS}/train_draft_{{family}}.log",
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=360,
    shell:
        "vadusa train-draft --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--tokens {TOKENS}/{wildcards.family} --out {RESULTS}/models/{wildcards.family}/draft "
        "> {log} 2>&1"


rule bench_draft:
    input:
        model=rules.train_base.output,
        draft=rules.train_draft.output,
    output:
        f"{RESULTS}/bench/{{family}}/draft.json",
    params:
        config_digest=CFG.section_hash("decoding", "draft.bench_tokens",
                                       "heads.bench_utterances", exclude=NOT_DRAFT),
        gammas=" ".join(str(g) for g in CFG.draft.bench_tokens),
    log:
        f"{LOGS}/bench_{{family}}_draft.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit {CFG.heads.bench_utterances} --batch-sizes "
        "--draft {input.draft} --draft-tokens {params.gammas} --out {output} > {log} 2>&1"


rule evaluate_draft:
    input:
        model=rules.train_base.output,
        draft=rules.train_draft.output,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/draft/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge",
                                       exclude=("decoding.draft_checkpoint",)),
    log:
        f"{LOGS}/evaluate_{{family}}_draft_test.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method draft --draft {input.draft} "
        "--batch-size 1 --out {RESULTS}/eval/{wildcards.family}/draft/test > {log} 2>&1"
