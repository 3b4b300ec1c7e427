# Speech tokens per family ({family}: whisper | hubert | wav2vec2 | encodec). The semantic
# families: a from-scratch SSL model where configured, k-means on train features, then token
# files for every split. The acoustic family (encodec): a codec (trained here, or the published
# one from tokens.encodec.weights) whose first codebook is the token.

KMEANS_FAMILIES = "whisper|hubert|wav2vec2"


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


def codec_checkpoint(wildcards=None):
    """The encodec family's codec: trained by the pipeline, or the published file."""
    if CFG.tokens.encodec.weights == "scratch":
        return f"{TOKENS}/encodec/codec/codec.pt"
    return CFG.tokens.encodec.weights


rule train_codec:
    input:
        rules.prepare_corpus.output.manifests,
    output:
        f"{TOKENS}/encodec/codec/codec.pt",
    params:
        config_digest=CFG.section_hash("tokens.encodec.scratch", "seed"),
    log:
        f"{LOGS}/train_codec.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa train-codec --config {RESOLVED} --corpus {CORPUS} "
        "--out {TOKENS}/encodec/codec > {log} 2>&1"


rule fit_kmeans:
    input:
        manifests=rules.prepare_corpus.output.manifests,
        ssl=ssl_model,
    output:
        f"{TOKENS}/{{family}}/kmeans.npz",
    wildcard_constraints:
        family=KMEANS_FAMILIES,
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


def tokenizer_files(wildcards):
    """What turns audio into a family's tokens: its k-means (and SSL model), or the codec.
    The encodec tokens need no config digest: codebook 1 does not depend on the bandwidth, and
    the codec file changes whenever its config does (train_codec's digest)."""
    if wildcards.family == "encodec":
        return [codec_checkpoint()]
    ssl = ssl_model(wildcards)
    return [f"{TOKENS}/{wildcards.family}/kmeans.npz"] + ([ssl] if ssl else [])


rule tokenize:
    input:
        tokenizer_files,
    output:
        tokens=expand(f"{TOKENS}/{{{{family}}}}/{{split}}.{{ext}}", split=SPLITS,
                      ext=["bin", "index.npz"]),
        meta=f"{TOKENS}/{{family}}/meta.json",
        stats=f"{TOKENS}/{{family}}/stats.json",
        figure=reported(f"{TOKENS}/{{family}}/cluster_usage.png", "cluster_usage", "Tokens",
                        "{family}", "figure", "token usage (train split)"),
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
