# Corpus stage: synthesize or screen the corpus, then measure the judge's WER on it.

CORPUS_FOLDER = ("Corpus", f"{CFG.corpus.source} corpus")  # the report's category, subcategory


rule prepare_corpus:
    output:
        manifests=expand(PLAN.manifest(), split=SPLITS),
        symbols=PLAN.corpus("symbols.json"),
        stats=PLAN.corpus("stats.json"),
        figure=reported(PLAN.corpus("hours_per_speaker.png"), "corpus_hours", *CORPUS_FOLDER,
                        "figure", "hours per voice and split"),
    params:
        config_digest=PLAN.digest("prepare_corpus"),
    log:
        PLAN.log("prepare_corpus"),
    threads: CFG.corpus.synthetic.workers
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "vadusa prepare --config {RESOLVED} --set corpus.synthetic.workers={threads} "
        "--out {CORPUS} > {log} 2>&1"


rule corpus_qa:
    input:
        rules.prepare_corpus.output.manifests,
    output:
        metrics=PLAN.corpus("qa/metrics.json"),
        figure=reported(PLAN.corpus("qa/wer_per_voice.png"), "corpus_qa", *CORPUS_FOLDER,
                        "figure", "judge WER and CER per voice"),
    params:
        config_digest=PLAN.digest("corpus_qa"),
    log:
        PLAN.log("corpus_qa"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "vadusa corpus-qa --config {RESOLVED} --set judge.threads={threads} "
        "--corpus {CORPUS} --out {output.metrics} > {log} 2>&1"


rule speaker_embeddings:
    """A GE2E d-vector per utterance of every split (vadusa.data.dvectors): what the unit
    vocoder is conditioned on with vocoder.speaker_conditioning dvector, the only stage that
    asks for them (vocoder.smk)."""
    input:
        rules.prepare_corpus.output.manifests,
    output:
        expand(PLAN.dvectors(), split=SPLITS),
    params:
        config_digest=PLAN.digest("speaker_embeddings"),
    log:
        PLAN.log("speaker_embeddings"),
    threads: PAIRED
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "vadusa embed-speakers --config {RESOLVED} --corpus {CORPUS} > {log} 2>&1"


rule corpus:
    input:
        rules.prepare_corpus.output,
        rules.corpus_qa.output,
