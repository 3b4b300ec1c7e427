# Speech tokens per family ({family}: whisper | hubert | wav2vec2): a from-scratch SSL model
# where configured, k-means on train features, then token files for every split.


def ssl_model(wildcards):
    """The pipeline-trained SSL model a family needs, if any."""
    if wildcards.family in ("hubert", "wav2vec2"):
        if getattr(CFG.tokens, wildcards.family).weights == "scratch":
            return f"{TOKENS}/{wildcards.family}/ssl/model.pt"
    return []


rule train_ssl:
    input:
        rules.prepare_corpus.output.manifests,
    output:
        f"{TOKENS}/{{family}}/ssl/model.pt",
    wildcard_constraints:
        family="hubert|wav2vec2",
    params:
        config_digest=lambda w: CFG.section_hash(f"tokens.{w.family}.scratch", "seed"),
    log:
        f"{LOGS}/train_ssl_{{family}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa train-ssl --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--out {TOKENS}/{wildcards.family}/ssl > {log} 2>&1"


rule fit_kmeans:
    input:
        manifests=rules.prepare_corpus.output.manifests,
        ssl=ssl_model,
    output:
        f"{TOKENS}/{{family}}/kmeans.npz",
    params:
        config_digest=lambda w: CFG.section_hash(
            f"tokens.{w.family}", "tokens.kmeans_utterances", "tokens.kmeans_max_frames", "seed"
        ),
    log:
        f"{LOGS}/fit_kmeans_{{family}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa fit-kmeans --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--out {output} > {log} 2>&1"


rule tokenize:
    input:
        kmeans=rules.fit_kmeans.output,
        ssl=ssl_model,
    output:
        tokens=expand(f"{TOKENS}/{{{{family}}}}/{{split}}.{{ext}}", split=SPLITS,
                      ext=["bin", "index.npz"]),
        meta=f"{TOKENS}/{{family}}/meta.json",
        stats=f"{TOKENS}/{{family}}/stats.json",
        figure=f"{TOKENS}/{{family}}/cluster_usage.png",
    log:
        f"{LOGS}/tokenize_{{family}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa tokenize --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--out {TOKENS}/{wildcards.family} > {log} 2>&1"


rule tokens:
    input:
        expand(rules.tokenize.output.stats, family=FAMILIES),
